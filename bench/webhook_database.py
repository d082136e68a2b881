"""The database of bench/webhooks.py: seeded like a busy install, and watched until a run's calls are all written."""
import secrets
import time

import psycopg

from bench.webhook_calls import ACCOUNT_SID, AUTH_TOKEN, BLOCK, PUBLIC_BASE_URL, SCREENED_EVERY, SECRET_KEY, fail, phone


def app_environ(database_url, instance_path):
    return {"SECRET_KEY": SECRET_KEY, "DATABASE_URL": database_url, "PUBLIC_BASE_URL": PUBLIC_BASE_URL,
            "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "INSTANCE_PATH": instance_path}


def prepare_database(environ, rng, numbers, clients, history):
    """Migrate, seed clients, assigned numbers, a call history and an admin's API token; write the routing cache.

    Returns the tracking numbers, those of them whose client screens its calls, and the API token.
    """
    from flask_migrate import upgrade

    from phoneapp import create_app
    from phoneapp.extensions import db
    from phoneapp.models import Client, PhoneAssignment
    from phoneapp.services.users import create_user, issue_token

    app = create_app(environ=environ)
    with app.app_context():
        upgrade()
        token = issue_token(create_user("bench@calls.bench.example", secrets.token_urlsafe(16), role="admin"))
        client_rows = [Client(name=f"Client {i:03d} Home Services", phone=phone(rng), email=f"office@c{i}.example")
                       for i in range(clients)]
        db.session.add_all(client_rows)
        db.session.flush()
        used, tracked = set(), []
        while len(tracked) < numbers:
            number = phone(rng)
            if number not in used:
                used.add(number)
                tracked.append(number)
        for client in client_rows[::SCREENED_EVERY]:
            failover = phone(rng)
            while failover in used:
                failover = phone(rng)
            used.add(failover)
            client.failover_numbers, client.ring_mode = [failover], "sequential"
            client.whisper = client.require_accept = True
        # One number in five forwards somewhere other than its client's phone, as agencies do.
        db.session.add_all(PhoneAssignment(
            twilio_sid=f"PN{rng.getrandbits(128):032x}", phone_number=number, friendly_name=f"Line {i}",
            client_id=client_rows[i % clients].id, forward_to_number=phone(rng) if i % 5 == 0 else None,
            is_active=True, webhook_url=PUBLIC_BASE_URL + "/twilio/voice", config_state="ok")
            for i, number in enumerate(tracked))
        db.session.commit()
        cached = write_routing_cache()
        db.engine.dispose()
    if cached is not None and cached != numbers:
        fail(f"the routing cache holds {cached} numbers, not {numbers}")
    if history:
        # The webhooks look calls up by CallSid and a number's latest forwards: indexes of a used install.
        with psycopg.connect(environ["DATABASE_URL"]) as conn:
            conn.execute("""
                INSERT INTO call_records (twilio_call_sid, phone_assignment_id, client_id, from_number, to_number,
                    forwarded_to, routed_by, status, dial_status, dial_leg_status, duration, dial_duration, is_test,
                    started_at, answered_at, ended_at, created_at, updated_at)
                SELECT 'CA' || md5(g::text), p.id, p.client_id, '+14155550100', p.phone_number, '+14155550199',
                    'assignment', 'completed', CASE WHEN g %% 4 = 0 THEN 'no-answer' ELSE 'completed' END,
                    CASE WHEN g %% 4 = 0 THEN 'no-answer' ELSE 'completed' END, 60, 45, false,
                    t, t + interval '5 s', t + interval '60 s', t, t + interval '60 s'
                FROM generate_series(1, %s) g
                JOIN phone_assignments p ON p.id = 1 + g %% (SELECT count(*) FROM phone_assignments)
                CROSS JOIN LATERAL (SELECT (now() AT TIME ZONE 'utc') - g * interval '150 s') s(t)
            """, (history,))
            conn.commit()
            conn.autocommit = True
            conn.execute("VACUUM ANALYZE")
    return tracked, [number for i, number in enumerate(tracked) if i % clients % SCREENED_EVERY == 0], token


def write_routing_cache():
    """Write the on-disk routing cache as a running install has it; how many numbers it holds (None: not found)."""
    try:
        from phoneapp.services.routing_table import refresh_routing_cache, routing_cache
    except ImportError:
        # Where routing keeps its cache is phoneapp's business: the web processes then build it themselves.
        return None
    refresh_routing_cache()
    return len(routing_cache())


def calls_fully_sent(sent_per_thread):
    """Calls whose five requests wrk sent, from how many requests each thread sent (blocks of BLOCK calls)."""
    total = 0
    for sent in sent_per_thread:
        blocks, rest = divmod(sent, 5 * BLOCK)
        total += blocks * BLOCK + max(0, rest - 4 * BLOCK)
    return total


def wait_for_writes(database_url, before, figures, timeout=180, whole_calls=True):
    """Seconds from the end of a run until all its calls are in the database (None: they never were), counts.

    `whole_calls`: the run sent calls to the end (the mix), not only their voice webhooks.
    """
    voice = before[1] + figures["voice_sent"]
    completed = before[2] + (calls_fully_sent(figures["sent_per_thread"]) if whole_calls else 0)
    started = time.monotonic()
    last, stable_since = None, started
    # One connection for the whole wait: a new one per look would bill PostgreSQL for the benchmark's polling.
    with psycopg.connect(database_url, autocommit=True) as conn:
        while True:
            counts = call_counts(conn)
            now = time.monotonic()
            if counts[1] >= voice and counts[2] >= completed:
                return now - started, counts
            if counts != last:
                last, stable_since = counts, now
            # Nothing moved for a while: what is missing is not coming.
            if now - stable_since > 10 or now - started > timeout:
                return None, counts
            time.sleep(0.2)


def current_counts(database_url):
    with psycopg.connect(database_url) as conn:
        return call_counts(conn)


def call_counts(conn):
    return conn.execute(
        "SELECT count(*), count(*) FILTER (WHERE routed_by IS NOT NULL),"
        " count(*) FILTER (WHERE status = 'completed' AND dial_status = 'completed') FROM call_records"
    ).fetchone()

