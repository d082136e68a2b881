"""1,000 calls with the database stopped for 30 s in the middle: is every caller forwarded, every call kept once?

Starts a private PostgreSQL server on its own port (never a shared one), migrates and seeds it (clients and
assigned tracking numbers, which also writes the routing cache), and serves phoneapp with gunicorn (gthread,
two web processes). Simulated callers then dial at a steady pace, each call as Twilio reports it: the voice
webhook, the <Dial action> and the call's completed status callback, all signed. Some seconds in, the
database is stopped; 30 s later it is started again; calls go on throughout. Afterwards the script waits
for the held webhooks to be written and counts the call records.

Prints how many callers got forwarding TwiML, answer latencies before, during and after the outage, how
many webhooks were held at the peak and how long writing them took, and the records: exactly one per call,
each with its final status.

    .venv/bin/python bench/outage.py [--calls 1000] [--rate 12] [--outage-after 25] [--outage 30]

Needs PostgreSQL's server programs (initdb, pg_ctl; `apt-get install postgresql`, or PG_BIN naming their
directory). Exits non-zero when the setup fails, not when a goal is missed.
"""
import argparse
import os
import platform
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from twilio.request_validator import RequestValidator  # noqa: E402

from phoneapp.services.webhook_log import WebhookLog  # noqa: E402
from tests.support.ports import free_port  # noqa: E402
from tests.support.private_postgres import PostgresServer  # noqa: E402

PUBLIC_BASE_URL = "https://calls.bench.test"
ACCOUNT_SID = "AC" + "b" * 32
AUTH_TOKEN = "f" * 32
NUMBERS = 50


def machine():
    model = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        memory_kb = next(int(line.split()[1]) for line in open("/proc/meminfo") if line.startswith("MemTotal"))
        memory = f"{memory_kb / 1024 / 1024:.0f} GiB"
    except (OSError, StopIteration):
        memory = "unknown memory"
    return f"{model}, {os.cpu_count()} CPUs, {memory}, {platform.system()} {platform.release()}, " \
           f"Python {platform.python_version()}"


def environ_for(database_url, instance):
    environ = {key: value for key, value in os.environ.items() if not key.startswith(("TWILIO_", "REDIS_"))}
    environ.update({
        "DATABASE_URL": database_url, "INSTANCE_PATH": instance, "PUBLIC_BASE_URL": PUBLIC_BASE_URL,
        "SECRET_KEY": secrets.token_urlsafe(48), "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        # Nothing here may reach Twilio: point the client at a port nobody answers.
        "TWILIO_API_BASE_URL": f"http://127.0.0.1:{free_port()}", "PYTHONPATH": str(ROOT),
    })
    return environ


def seed(environ):
    """Migrate, then assign every tracking number to a client (which writes the routing cache)."""
    script = f"""
from flask_migrate import upgrade
from phoneapp import create_app
from phoneapp.extensions import db
from phoneapp.models import PhoneAssignment
from phoneapp.services import assignments, clients
app = create_app()
with app.app_context():
    upgrade()
    for n in range({NUMBERS}):
        client = clients.create_client({{"name": f"Client {{n}}", "phone": f"+1415555{{n:04d}}"}}, "US")
        number = PhoneAssignment(twilio_sid=f"PN{{n:032d}}", phone_number=f"+1312555{{n:04d}}")
        db.session.add(number)
        db.session.commit()
        assignments.update_assignment(number, {{"client_id": client.id}})
"""
    subprocess.run([sys.executable, "-c", script], env=environ, cwd=ROOT, check=True, capture_output=True)


class Caller:
    """Signed Twilio requests to the server, as Twilio would send them for one call after another."""

    def __init__(self, port):
        self.port = port
        self.validator = RequestValidator(AUTH_TOKEN)

    def post(self, path, params):
        signature = self.validator.compute_signature(PUBLIC_BASE_URL + path, params)
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}",
                                         data=urllib.parse.urlencode(params).encode(),
                                         headers={"X-Twilio-Signature": signature})
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, response.read()

    def call(self, n):
        """One call; returns (started at, seconds to answer, forwarded to the right phone?)."""
        sid = f"CA{n:032d}"
        tracking, expected = f"+1312555{n % NUMBERS:04d}", f"+1415555{n % NUMBERS:04d}"
        started = time.monotonic()
        try:
            status, body = self.post("/twilio/voice", {"CallSid": sid, "AccountSid": ACCOUNT_SID, "To": tracking,
                                                       "From": f"+1202555{n % 10000:04d}", "CallStatus": "ringing",
                                                       "Direction": "inbound"})
            took = time.monotonic() - started
            number = ET.fromstring(body).find("Dial/Number")
            forwarded = status == 200 and number is not None and number.text == expected
        except (urllib.error.URLError, OSError, ET.ParseError):
            return started, time.monotonic() - started, False
        try:
            self.post("/twilio/dial-status", {"CallSid": sid, "AccountSid": ACCOUNT_SID, "DialCallStatus": "completed",
                                              "DialCallSid": "CB" + sid[2:], "DialCallDuration": "60"})
            self.post("/twilio/status", {"CallSid": sid, "AccountSid": ACCOUNT_SID, "CallStatus": "completed",
                                         "CallDuration": "64"})
        except (urllib.error.URLError, OSError):
            forwarded = False
        return started, took, forwarded


def percentile(values, fraction):
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def held_count(instance):
    """Webhooks answered but not yet in the database, across the web processes' logs."""
    return WebhookLog(Path(instance) / "webhook-log").waiting()[0]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=12.0, help="new calls per second")
    parser.add_argument("--outage-after", type=float, default=25.0, help="seconds before the database stops")
    parser.add_argument("--outage", type=float, default=30.0, help="seconds the database stays down")
    args = parser.parse_args()

    instance = tempfile.mkdtemp(prefix="phoneapp-outage-")
    pg = PostgresServer()
    pg.start()
    server = None
    try:
        environ = environ_for(pg.url, instance)
        seed(environ)
        port = free_port()
        log = open(Path(instance) / "web.log", "w")
        server = subprocess.Popen([sys.executable, "-m", "gunicorn", "-k", "gthread", "-w", "2", "--threads", "8",
                                   "--no-control-socket", "-b", f"127.0.0.1:{port}", "wsgi:app"],
                                  cwd=ROOT, env=environ, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        caller = Caller(port)
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/static/app.css", timeout=2).read()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("the web server did not start; see its log") from None
                time.sleep(0.2)

        print(f"{args.calls} calls at {args.rate:g}/s; the database stops after {args.outage_after:g} s "
              f"for {args.outage:g} s")
        outage = {}
        peak_held = [0]

        def stop_and_start_database(began):
            time.sleep(max(0.0, began + args.outage_after - time.monotonic()))
            outage["start"] = time.monotonic()
            pg.stop("immediate")
            while time.monotonic() < outage["start"] + args.outage:
                peak_held[0] = max(peak_held[0], held_count(instance))
                time.sleep(0.5)
            pg.start()
            outage["end"] = time.monotonic()
            peak_held[0] = max(peak_held[0], held_count(instance))

        began = time.monotonic()
        threading.Thread(target=stop_and_start_database, args=(began,), daemon=True).start()
        results = []
        with ThreadPoolExecutor(max_workers=32) as pool:
            futures = []
            for n in range(args.calls):
                time.sleep(max(0.0, began + n / args.rate - time.monotonic()))
                futures.append(pool.submit(caller.call, n))
            results = [future.result() for future in futures]
        traffic_ended = time.monotonic()
        while "end" not in outage:
            time.sleep(0.2)

        drain_started = time.monotonic()
        while held_count(instance) and time.monotonic() - drain_started < 120:
            time.sleep(0.1)
        drained_in = time.monotonic() - drain_started
        # The last replay may still be committing when its directory empties.
        time.sleep(1)

        with psycopg.connect(pg.url) as connection:
            rows = connection.execute("select twilio_call_sid, status, duration, dial_status, routed_by "
                                      "from call_records").fetchall()
    finally:
        if server is not None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
        pg.destroy()

    during = [took for started, took, _ in results if outage["start"] <= started < outage["end"]]
    outside = [took for started, took, _ in results if not outage["start"] <= started < outage["end"]]
    forwarded = sum(1 for _, _, ok in results if ok)
    sids = [row[0] for row in rows]
    final = sum(1 for _, status, duration, dial, routed in rows
                if status == "completed" and duration == 64 and dial == "completed" and routed == "assignment")
    expected = {f"CA{n:032d}" for n in range(args.calls)}

    print(f"machine: {machine()}")
    print(f"traffic: {traffic_ended - began:.1f} s; database down {outage['end'] - outage['start']:.1f} s "
          f"with {len(during)} calls arriving meanwhile")
    print(f"callers forwarded:  {forwarded}/{args.calls} ({forwarded / args.calls:.1%})")
    print(f"answer time, database up:   p50 {percentile(outside, .5) * 1000:.0f} ms, "
          f"p99 {percentile(outside, .99) * 1000:.0f} ms, max {max(outside) * 1000:.0f} ms")
    if during:
        print(f"answer time, database down: p50 {percentile(during, .5) * 1000:.0f} ms, "
              f"p99 {percentile(during, .99) * 1000:.0f} ms, max {max(during) * 1000:.0f} ms "
              f"(goal: under 1,000 ms)")
    print(f"webhooks waiting at the peak: {peak_held[0]}; all written {drained_in:.1f} s after the traffic "
          "and the outage ended")
    print(f"call records: {len(rows)} for {args.calls} calls ({len(rows) / args.calls:.3f}); "
          f"duplicates {len(sids) - len(set(sids))}; missing {len(expected - set(sids))}; "
          f"with their final status {final}/{args.calls}")
    ok = (forwarded == args.calls and len(rows) == args.calls and set(sids) == expected and final == args.calls
          and (not during or max(during) < 1.0))
    print("goals met" if ok else "GOALS MISSED")


if __name__ == "__main__":
    main()
