"""How fast the staff pages are on a year of traffic: 300 clients, 1,000 numbers, 1,000,000 calls.

Creates the database `phoneapp_bench` on a PostgreSQL server (dropping it first if present; no other
database is touched), migrates it, seeds it in bulk, logs in through the real login form and times the
dashboard, the numbers page, a client's page, the filtered call log and the CSV export in-process with
Flask's test client. Prints the median and p95 per page against the 150 ms goal.

    .venv/bin/python bench/pages.py [--database-url URL] [--runs 30] [--export-runs 5] [--keep] [--skip-seed]

The server URL comes from --database-url, else BENCH_DATABASE_URL, else the local trust-auth default.
--keep leaves the database behind; --skip-seed reuses (and keeps) a database a --keep run left.
"""
import argparse
import csv
import io
import logging
import math
import os
import platform
import random
import re
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg  # noqa: E402
from flask import url_for  # noqa: E402
from werkzeug.routing import BuildError  # noqa: E402

from phoneapp import create_app  # noqa: E402
from phoneapp.extensions import db  # noqa: E402

BENCH_DB = "phoneapp_bench"
DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
ADMIN = ("bench@example.test", "bench-password-1")
GOAL_MS = 150
CLIENTS, NUMBERS, CALLS, CALLS_TODAY, LIVE_CALLS = 300, 1_000, 1_000_000, 3_000, 8
AREA_CODES = ("415", "312", "206", "512", "617", "303", "404", "702", "919", "503")
PLACES = (("San Francisco", "CA", "94103"), ("Chicago", "IL", "60601"), ("Seattle", "WA", "98101"),
          ("Austin", "TX", "78701"), ("Boston", "MA", "02108"), ("Denver", "CO", "80202"))
# Calls by hour of day: quiet at night, busy in office hours.
HOUR_WEIGHTS = (1, 1, 1, 1, 1, 2, 4, 8, 14, 16, 16, 15, 13, 14, 15, 15, 13, 10, 7, 5, 4, 3, 2, 1)
CALL_COLUMNS = ("twilio_call_sid", "phone_assignment_id", "client_id", "from_number", "to_number", "forwarded_to",
                "routed_by", "status", "dial_call_sid", "dial_leg_status", "dial_status", "duration",
                "dial_duration", "voicemail_url", "voicemail_duration", "caller_city", "caller_state", "caller_zip",
                "caller_country", "is_test", "started_at", "answered_at", "ended_at", "created_at", "updated_at")


def phone(rng):
    return f"+1{rng.choice(AREA_CODES)}{rng.randint(200, 999)}{rng.randint(0, 9999):04d}"


def seed(conn, rng, now, today_start):
    """Clients, numbers, calls and alerts, as if the app had run for a year; the bulk through COPY."""
    cur = conn.cursor()
    with cur.copy("COPY clients (name, phone, email, notes, is_active, created_at, updated_at) FROM STDIN") as copy:
        for i in range(CLIENTS):
            copy.write_row((f"Client {i:03d} Home Services", phone(rng), f"office{i}@client{i}.example", "",
                            i % 40 != 39, now - timedelta(days=400), now - timedelta(days=rng.randint(0, 300))))
    client_phone = dict(cur.execute("SELECT id, phone FROM clients ORDER BY id").fetchall())
    client_ids = list(client_phone)

    numbers = []  # dicts in id order, with the client history the calls are generated from
    for i in range(NUMBERS):
        unassigned, inactive = i % 33 == 32, i % 50 == 49
        r = rng.random()
        state = "ok" if r < 0.85 else "drift" if r < 0.90 else "missing" if r < 0.93 else "unverified"
        client = None if unassigned else client_ids[i % CLIENTS]
        since = now - timedelta(days=rng.randint(10, 300))
        previous = rng.choice(client_ids) if unassigned or rng.random() < 0.08 else None
        numbers.append({"phone": f"+1{AREA_CODES[i % 10]}{700 + i // 10 % 100}{i:04d}", "client": client,
                        "previous": previous, "since": since, "active": not inactive,
                        "off_since": since if inactive else None, "state": state,
                        "forward": phone(rng) if client and rng.random() < 0.1 else None,
                        "weight": min(rng.paretovariate(1.3), 40)})
    detail = {"ok": "", "unverified": "", "missing": "Number is gone from the Twilio account",
              "drift": "Twilio's configuration differs: voice_url is https://old-host.example.com/voice"}
    with cur.copy("COPY phone_assignments (twilio_sid, phone_number, friendly_name, client_id, forward_to_number,"
                  " is_active, webhook_url, config_state, config_detail, last_verified_at, created_at, updated_at)"
                  " FROM STDIN") as copy:
        for n in numbers:
            verified = None if n["state"] == "unverified" else now - timedelta(minutes=rng.uniform(1, 45))
            copy.write_row((f"PN{rng.getrandbits(128):032x}", n["phone"], f"Line {n['phone'][-4:]}", n["client"],
                            n["forward"], n["active"], "http://127.0.0.1:5000/twilio/voice", n["state"],
                            detail[n["state"]], verified, now - timedelta(days=400), now - timedelta(days=1)))
    number_ids = cur.execute("SELECT id FROM phone_assignments ORDER BY id").fetchall()
    for n, (number_id,) in zip(numbers, number_ids, strict=True):
        n["id"] = number_id

    # Start times: a year of office-hour traffic, a few thousand today, a few calls still live.
    history = CALLS - CALLS_TODAY - LIVE_CALLS
    hours = rng.choices(range(24), weights=HOUR_WEIGHTS, k=history)
    starts = sorted(today_start - timedelta(days=rng.randint(1, 364), hours=-h, seconds=-rng.randrange(3600))
                    for h in hours)
    today_span = max((now - today_start).total_seconds() - 300, 60)
    starts += sorted(today_start + timedelta(seconds=rng.uniform(0, today_span)) for _ in range(CALLS_TODAY))
    starts += sorted(now - timedelta(seconds=rng.uniform(5, 240)) for _ in range(LIVE_CALLS))
    cum_weights, total = [], 0.0
    for n in numbers:
        total += n["weight"]
        cum_weights.append(total)
    with cur.copy(f"COPY call_records ({', '.join(CALL_COLUMNS)}) FROM STDIN") as copy:
        for i, started in enumerate(starts):
            number = rng.choices(numbers, cum_weights=cum_weights)[0]
            while number["off_since"] and started > number["off_since"]:
                number = rng.choices(numbers, cum_weights=cum_weights)[0]
            copy.write_row(call_row(rng, i, started, number, client_phone, live=i >= CALLS - LIVE_CALLS))

    cur.execute("UPDATE phone_assignments p SET last_call_at = c.last FROM (SELECT phone_assignment_id,"
                " max(started_at) AS last FROM call_records GROUP BY 1) c WHERE p.id = c.phone_assignment_id")
    alerts = [("unrouted_call", n["phone"], f"Calls to {n['phone']} reach nobody, the caller hears a message: "
               "number is not assigned to a client", n["id"]) for n in numbers if n["client"] is None]
    alerts += [("webhook_drift" if n["state"] == "drift" else "number_missing", f"number:{n['id']}",
                f"{n['phone']}: {detail[n['state']]}", n["id"]) for n in numbers if n["state"] in ("drift", "missing")]
    cur.executemany("INSERT INTO alerts (kind, subject, severity, message, phone_assignment_id, occurrences,"
                    " created_at, last_seen_at) VALUES (%s, %s, 'error', %s, %s, 3, %s, %s)",
                    [(*alert, now - timedelta(days=2), now - timedelta(hours=1)) for alert in alerts])
    if cur.execute("SELECT 1 FROM information_schema.columns WHERE table_name = 'phone_assignments'"
                   " AND column_name = 'failed_forward_streak'").fetchone():
        # The latest finished real forwards that failed in a row, per number (the status dot's rule).
        cur.execute("""UPDATE phone_assignments p SET failed_forward_streak = s.streak FROM (
            SELECT phone_assignment_id, coalesce(min(pos) FILTER (WHERE dial_status NOT IN
                   ('busy', 'no-answer', 'failed')) - 1, count(*)) AS streak
            FROM (SELECT phone_assignment_id, dial_status, row_number() OVER (PARTITION BY phone_assignment_id
                  ORDER BY started_at DESC, id DESC) AS pos FROM call_records
                  WHERE dial_status IS NOT NULL AND NOT is_test) latest GROUP BY 1) s
            WHERE p.id = s.phone_assignment_id""")
    conn.commit()


def call_row(rng, i, started, number, client_phone, live):
    """One call_records row, routed the way the voice webhook would have routed it then."""
    client = number["client"]
    if number["previous"] and started < number["since"]:
        client = number["previous"]
    target = number["forward"] or client_phone.get(client)
    place = rng.choice(PLACES) if rng.random() < 0.6 else (None, None, None)
    row = {"twilio_call_sid": f"CA{i:08x}{rng.getrandbits(96):024x}", "phone_assignment_id": number["id"],
           "from_number": phone(rng), "to_number": number["phone"], "is_test": rng.random() < 0.02,
           "caller_city": place[0], "caller_state": place[1], "caller_zip": place[2],
           "caller_country": "US" if place[0] else None, "started_at": started, "created_at": started}
    if target is None:
        row.update(routed_by="message", status="completed", duration=12)
    else:
        row.update(routed_by="assignment", client_id=client, forwarded_to=target,
                   dial_call_sid=f"CA{rng.getrandbits(128):032x}")
        ring = rng.randint(3, 20)
        r = rng.random()
        if live:
            answered = r < 0.5
            row.update(status="in-progress" if answered else "ringing",
                       dial_leg_status="in-progress" if answered else "ringing",
                       answered_at=started + timedelta(seconds=ring) if answered else None)
        elif r < 0.70:
            talk = int(rng.expovariate(1 / 180)) + 5
            row.update(status="completed", dial_status="completed", dial_leg_status="completed",
                       answered_at=started + timedelta(seconds=ring), dial_duration=talk, duration=ring + talk + 1)
        else:
            failed = "no-answer" if r < 0.88 else "busy" if r < 0.96 else "failed"
            ring = 20 if failed == "no-answer" else rng.randint(0, 3)
            row.update(status="completed", dial_status=failed, dial_leg_status=failed, duration=ring + 8)
            if rng.random() < 0.45:
                message = rng.randint(5, 90)
                row.update(voicemail_url="https://api.twilio.com/2010-04-01/Accounts/ACbench/Recordings/"
                                         f"RE{rng.getrandbits(128):032x}",
                           voicemail_duration=message, duration=ring + message + 8)
    if row.get("duration") is not None:
        row["ended_at"] = started + timedelta(seconds=row["duration"])
    row["updated_at"] = row.get("ended_at") or row.get("answered_at") or started
    return tuple(row.get(column) for column in CALL_COLUMNS)


def login(client, app):
    with app.test_request_context():
        login_url = url_for("auth.login")
    page = client.get(login_url)
    token = re.search(rb'name="csrf_token"[^>]*value="([^"]+)"', page.data)
    if page.status_code != 200 or token is None:
        sys.exit(f"login page: status {page.status_code}, csrf_token {'found' if token else 'missing'}")
    response = client.post(login_url, data={"email": ADMIN[0], "password": ADMIN[1],
                                            "csrf_token": token.group(1).decode()})
    if response.status_code != 303:
        sys.exit(f"login: expected 303, got {response.status_code}")


def timed_get(client, url):
    """(ms, response, body) for one GET, the streamed body read to its end."""
    started = time.perf_counter()
    response = client.get(url, buffered=False)
    body = b"".join(response.iter_encoded())
    response.close()
    return (time.perf_counter() - started) * 1000, response, body


def measure(client, name, url, runs, warmups):
    samples, body = [], b""
    for run in range(warmups + runs):
        ms, response, body = timed_get(client, url)
        if response.status_code != 200:
            sys.exit(f"{name}: {url} answered {response.status_code}, not 200")
        if run >= warmups:
            samples.append(ms)
    return samples, body


def p95(samples):
    ordered = sorted(samples)
    return ordered[max(math.ceil(0.95 * len(ordered)) - 1, 0)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL") or DEFAULT_SERVER,
                        help="PostgreSQL server to create the bench database on")
    parser.add_argument("--runs", type=int, default=30, help="timed requests per page")
    parser.add_argument("--export-runs", type=int, default=5, help="timed CSV exports (each streams ~250k rows)")
    parser.add_argument("--keep", action="store_true", help="keep the bench database afterwards")
    parser.add_argument("--skip-seed", action="store_true", help="reuse (and keep) a database a --keep run left")
    args = parser.parse_args()
    logging.disable(logging.INFO)  # Alembic and the app log their start-up at INFO.

    server_url = args.database_url.replace("postgresql+psycopg://", "postgresql://", 1)
    bench_url = urlunsplit(urlsplit(server_url)._replace(path="/" + BENCH_DB))
    keep = args.keep or args.skip_seed
    with psycopg.connect(server_url, autocommit=True) as server:
        version = server.execute("SHOW server_version").fetchone()[0]
        if not args.skip_seed:
            server.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
            server.execute(f"CREATE DATABASE {BENCH_DB}")
        elif not server.execute("SELECT 1 FROM pg_database WHERE datname = %s", (BENCH_DB,)).fetchone():
            sys.exit(f"--skip-seed: there is no {BENCH_DB} database to reuse; run once with --keep first")
    instance = tempfile.TemporaryDirectory(prefix="phoneapp-bench-")
    app = create_app({"INSTANCE_PATH": instance.name}, environ={
        "SECRET_KEY": "bench", "DATABASE_URL": bench_url, "PUBLIC_BASE_URL": "http://127.0.0.1:5000"})
    now = datetime.now(UTC).replace(tzinfo=None)
    try:
        with app.app_context():
            from phoneapp.services.number_cards import today_start_utc
            today_start = today_start_utc()
        seed_seconds = None
        if not args.skip_seed:
            started = time.perf_counter()
            with app.app_context():
                from flask_migrate import upgrade

                from phoneapp.services.users import create_user
                upgrade()
                create_user(*ADMIN, role="admin", name="Bench Admin")
            with psycopg.connect(bench_url) as conn:
                seed(conn, random.Random(2024), now, today_start)
                conn.autocommit = True
                conn.execute("VACUUM ANALYZE")  # what autovacuum would have done to a year-old table
            seed_seconds = time.perf_counter() - started
        with psycopg.connect(bench_url) as conn:
            counts = conn.execute(
                "SELECT (SELECT count(*) FROM clients), (SELECT count(*) FROM phone_assignments),"
                " (SELECT count(*) FROM call_records), (SELECT count(*) FROM call_records WHERE started_at >= %s),"
                " (SELECT count(*) FROM call_records WHERE ended_at IS NULL)", (today_start,)).fetchone()
            client_id = conn.execute(  # the client whose numbers took the most calls
                "SELECT client_id FROM call_records WHERE client_id IS NOT NULL GROUP BY 1"
                " ORDER BY count(*) DESC LIMIT 1").fetchone()[0]
        print(f"machine  : {os.cpu_count()} CPUs, {platform.platform()}, Python {platform.python_version()},"
              f" PostgreSQL {version}")
        seeded = f"migrated and seeded in {seed_seconds:.1f} s" if seed_seconds is not None else "reused, not seeded"
        print(f"database : {BENCH_DB}, {seeded}: {counts[0]:,} clients, {counts[1]:,} numbers, {counts[2]:,} calls"
              f" ({counts[3]:,} today, {counts[4]:,} live)")
        print(f"runs     : {args.runs} per page ({args.export_runs} for the export) after 3 warm-ups\n")
        run_pages(app, client_id, now, args)
    finally:
        with app.app_context():
            db.engine.dispose()
        instance.cleanup()
        if not keep:
            with psycopg.connect(server_url, autocommit=True) as server:
                server.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
        else:
            print(f"\nkept database {BENCH_DB}: {bench_url}")


def run_pages(app, client_id, now, args):
    today = now.date()
    day = today.isoformat()
    with app.test_request_context():
        pages = [("dashboard", url_for("dashboard.dashboard")),
                 ("numbers", url_for("numbers.numbers")),
                 (f"client {client_id}", url_for("clients.client_detail", client_id=client_id)),
                 ("calls, client, 30 days", url_for("calls.calls", client=client_id,
                                                    date_from=(today - timedelta(days=30)).isoformat(), date_to=day))]
        try:
            export_url = url_for("calls.export_calls", date_from=(today - timedelta(days=90)).isoformat(),
                                 date_to=day)
        except BuildError:
            export_url = None
    client = app.test_client()
    login(client, app)
    print(f"{'page':<26}{'median ms':>10}{'p95 ms':>10}  goal {GOAL_MS} ms")
    for name, url in pages:
        samples, _ = measure(client, name, url, args.runs, warmups=3)
        median = statistics.median(samples)
        print(f"{name:<26}{median:>10.1f}{p95(samples):>10.1f}  {'met' if median < GOAL_MS else 'MISSED'}")
    name = "export CSV, 90 days"
    if export_url is None or timed_get(client, export_url)[1].status_code == 404:
        print(f"{name:<26}  missing: calls.export_calls does not exist yet")
        return
    samples, body = measure(client, name, export_url, args.export_runs, warmups=0)
    median = statistics.median(samples)
    rows = max(sum(1 for _ in csv.reader(io.StringIO(body.decode("utf-8-sig")))) - 1, 0)
    print(f"{name:<26}{median:>10.1f}{p95(samples):>10.1f}  {rows:,} rows, {rows / median * 1000:,.0f} rows/s")


if __name__ == "__main__":
    main()
