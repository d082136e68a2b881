"""How long a routing change made through one web process takes to reach every web process (SPEC §11).

A tracking number is moved to another client through the API (answered by one of gunicorn's processes), then
called over and over, a new call each time and a few at once so that every process answers some, until each
process forwards it to the new client's phone and keeps doing so. The answer's X-Served-By header
(bench/webhook_server.py) says which process gave it. The figure is the time from the API's answer to the
first call after which a process never again rang the old phone, for the slowest process.
"""
import http.client
import json
import secrets
import threading
import time
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor

import psycopg

from bench.webhook_calls import SERVED_BY_HEADER, fail

CONCURRENT_CALLS = 4
# A process counts as changed once this many of its answers in a row ring the new phone.
SETTLED_AFTER = 3


def plain_number(database_url):
    """(assignment id, tracking number, phone of its client, [(other client id, its phone)]): no screening."""
    with psycopg.connect(database_url) as conn:
        plain = ("NOT c.whisper AND NOT c.require_accept AND c.is_active AND c.phone IS NOT NULL"
                 " AND c.phone NOT IN (SELECT phone_number FROM phone_assignments)")
        number = conn.execute(
            "SELECT p.id, p.phone_number, c.id, c.phone FROM phone_assignments p JOIN clients c ON c.id = p.client_id"
            f" WHERE p.forward_to_number IS NULL AND p.is_active AND {plain} ORDER BY p.id LIMIT 1").fetchone()
        if number is None:
            fail("no tracking number forwards to a client that neither whispers nor asks to press 1")
        others = conn.execute(f"SELECT c.id, c.phone FROM clients c WHERE {plain} AND c.id <> %s"
                              " AND c.phone <> %s ORDER BY c.id LIMIT 1", (number[2], number[3])).fetchall()
    return number[0], number[1], (number[2], number[3]), others[0]


class Caller:
    """Signed voice webhooks to one tracking number; each answer as (seconds, process id, phone rung)."""

    def __init__(self, requests, port, number):
        self.requests, self.port, self.number = requests, port, number
        self.lock = threading.Lock()

    def call(self):
        with self.lock:
            params = {**self.requests.call_params(self.number, self.requests.caller(), "CA" + secrets.token_hex(16)),
                      "CallStatus": "ringing"}
        body, signature = self.requests.signed("/twilio/voice", params)
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            connection.request("POST", "/twilio/voice", body=body, headers={
                "Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature})
            response = connection.getresponse()
            answer = response.read()
        finally:
            connection.close()
        if response.status != 200:
            fail(f"the voice webhook of {self.number} answered {response.status}: {answer[:300]!r}")
        rung = ET.fromstring(answer).find("Dial/Number")
        return time.monotonic(), response.getheader(SERVED_BY_HEADER), (rung.text or "").strip() if rung is not None \
            else None

    def calls(self, pool):
        return list(pool.map(lambda _: self.call(), range(CONCURRENT_CALLS)))


def move_number(port, token, assignment_id, client_id):
    """PATCH the number's client through the API; the process that answered."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("PATCH", f"/api/phone-assignments/{assignment_id}",
                           body=json.dumps({"client_id": client_id}),
                           headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
        response = connection.getresponse()
        answer = response.read()
    finally:
        connection.close()
    if response.status != 200:
        fail(f"moving number {assignment_id} to client {client_id} answered {response.status}: {answer[:300]!r}")
    return response.getheader(SERVED_BY_HEADER)


def one_change(caller, pool, port, token, assignment_id, old, new, processes, timeout):
    """{process id: seconds until it settled on the new phone, or None}, and the process the API answered on."""
    seen = set()
    for _ in range(100):
        for _at, pid, rung in caller.calls(pool):
            if rung != old[1]:
                fail(f"before the change, {caller.number} rang {rung}, not {old[1]}")
            seen.add(pid)
        if seen >= processes:
            break
    changed_on = move_number(port, token, assignment_id, new[0])
    changed_at = time.monotonic()
    answers = {pid: [] for pid in processes}
    while time.monotonic() - changed_at < timeout:
        for at, pid, rung in caller.calls(pool):
            answers.setdefault(pid, []).append((at - changed_at, rung == new[1]))
        if all(len(rows) >= SETTLED_AFTER and all(new_phone for _, new_phone in rows[-SETTLED_AFTER:])
               for rows in answers.values()):
            break
    return {pid: settled_after(rows) for pid, rows in answers.items()}, changed_on


def settled_after(rows):
    """Seconds from the change to the first answer after the last one that rang the old phone (None: never)."""
    last_old = max((index for index, (_, new_phone) in enumerate(rows) if not new_phone), default=-1)
    if last_old == len(rows) - 1 or len(rows) - last_old - 1 < SETTLED_AFTER:
        return None
    return rows[last_old + 1][0]


def measure(requests, port, token, database_url, processes, *, changes, timeout):
    """Move a number back and forth `changes` times; print each and return the slowest (None: one never settled)."""
    assignment_id, number, first, second = plain_number(database_url)
    caller = Caller(requests, port, number)
    processes = {str(pid) for pid in processes}
    slowest = 0.0
    print(f"\nrouting change: tracking number {number} moved between two clients through the API "
          f"(PATCH /api/phone-assignments/{assignment_id}), then called {CONCURRENT_CALLS} at a time until every "
          f"web process rang the new client's phone {SETTLED_AFTER} times in a row")
    with ThreadPoolExecutor(CONCURRENT_CALLS) as pool:
        for change in range(changes):
            old, new = (first, second) if change % 2 == 0 else (second, first)
            settled, changed_on = one_change(caller, pool, port, token, assignment_id, old, new, processes, timeout)
            figures = ", ".join(
                f"process {pid}{' (the API)' if pid == changed_on else ''} "
                + (f"{seconds:.3f} s" if seconds is not None else f"NOT within {timeout:.0f} s")
                for pid, seconds in sorted(settled.items()))
            print(f"  change {change + 1}: {figures}")
            if any(seconds is None for seconds in settled.values()) or not settled:
                slowest = None
            elif slowest is not None:
                slowest = max(slowest, *settled.values())
    if slowest is not None:
        print(f"  every process had every change within {slowest:.3f} s")
    return slowest
