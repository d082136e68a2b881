"""Where the CPU of one voice webhook goes, measured in one web process: framework, signature, log, routing, TwiML.

Run by bench/webhooks.py in a process of its own, set up as a gunicorn worker is (`wsgi.py`, the settings in its
environment, a webhook log of its own). It sends signed voice webhooks of new calls straight through the WSGI
app, one at a time: first unprofiled, for the CPU (and wall) time per request; then under cProfile, once timed
by this thread's CPU clock and once by the wall clock, for the shares. cProfile makes every call dearer, so the
shares are applied to the unprofiled figures.

A function's own time goes to the bucket of the phase that called it: each phase is found by the functions it
calls today (by file and name, so a function that moves within its file keeps its bucket, and one that moves
elsewhere leaves its time to the framework, the bucket still printed). A function called from several phases
splits its time between them by how long each caller kept it busy. What no phase claims is the framework:
Flask and werkzeug handling the request and the response, and the view around the phases. gunicorn's own HTTP
parsing is not included: every request to the bare endpoint pays it too.

    .venv/bin/python -m bench.webhook_cpu_split NUMBERS_FILE [--requests 2000]   (settings in the environment)
"""
import argparse
import cProfile
import logging
import os
import random
import sys
import time
from collections import defaultdict
from fnmatch import fnmatch
from pathlib import Path

from werkzeug.test import EnvironBuilder

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.webhook_calls import Requests  # noqa: E402

FRAMEWORK = "framework (Flask, werkzeug)"
# Each phase: the functions it starts with, as (path pattern, function name or "*"); first match wins.
PHASES = (
    ("signature check", (("*/phoneapp/twilio/signatures.py", "signature_is_valid"),
                         ("*/phoneapp/twilio/signatures.py", "public_request_url"),
                         ("*/twilio/request_validator.py", "*"))),
    ("log append", (("*/phoneapp/services/webhook_events.py", "record_webhook"),
                    ("*/phoneapp/services/webhook_events.py", "*webhook_event"),
                    ("*/phoneapp/services/webhook_events.py", "inbound_call_event"),
                    ("*/phoneapp/services/webhook_events.py", "start_writer"),
                    ("*/phoneapp/services/webhook_log.py", "*"),
                    ("*/phoneapp/webhooks/*.py", "keep_writing_logged_webhooks"))),
    ("routing (route, rules, block list)", (("*/phoneapp/services/call_context.py", "*"),
                                            ("*/phoneapp/services/routing*.py", "*"),
                                            ("*/phoneapp/services/call_rules.py", "*"),
                                            ("*/phoneapp/services/block_list.py", "*"),
                                            ("*/phoneapp/domain/call_plan.py", "*"),
                                            ("*/phoneapp/domain/routing.py", "*"),
                                            # The session the lookup opened, closed at teardown.
                                            ("*/flask_sqlalchemy/extension.py", "_teardown_session"))),
    ("TwiML", (("*/phoneapp/webhooks/*.py", "_twiml_for"),
               ("*/phoneapp/webhooks/*.py", "_dial"),
               ("*/phoneapp/twilio/twiml.py", "*"),
               ("*/phoneapp/twilio/public_urls.py", "*"),
               ("*/twilio/twiml/*.py", "*"))),
    ("security headers", (("*/flask_talisman/*.py", "*"),
                          ("*/phoneapp/security.py", "keep_private_answers_out_of_caches"))),
)
BUCKETS = (FRAMEWORK, *(name for name, _ in PHASES))


def phase_of(function):
    """The phase `function` ((file, line, name) as cProfile keys it) starts, or None."""
    path, _line, name = function
    for phase, patterns in PHASES:
        for path_pattern, name_pattern in patterns:
            if fnmatch(path, path_pattern) and fnmatch(name, name_pattern):
                return phase
    return None


def bucket_times(stats):
    """{bucket: seconds} of a cProfile run, and {bucket: [(seconds, function name)]}, dearest first."""
    shares_of = {}

    def shares(function, visiting):
        if function in shares_of:
            return shares_of[function]
        phase = phase_of(function)
        if phase is not None:
            result = {phase: 1.0}
        else:
            callers = {caller: edge[3] for caller, edge in stats[function][4].items()
                       if caller in stats and caller not in visiting}
            if callers and sum(callers.values()) <= 0:
                callers = {caller: stats[function][4][caller][1] for caller in callers}
            total = sum(callers.values())
            if not total:
                result = {FRAMEWORK: 1.0}
            else:
                result = defaultdict(float)
                for caller, weight in callers.items():
                    for bucket, share in shares(caller, visiting | {function}).items():
                        result[bucket] += share * weight / total
        shares_of[function] = result
        return result

    times, dearest = defaultdict(float), defaultdict(list)
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 20_000))
    for function, (_cc, _nc, own, _cumulative, _callers) in stats.items():
        for bucket, share in shares(function, frozenset()).items():
            times[bucket] += own * share
            dearest[bucket].append((own * share, short_name(function)))
    return times, {bucket: sorted(items, reverse=True)[:3] for bucket, items in dearest.items()}


def short_name(function):
    path, line, name = function
    if path == "~":
        return name
    parts = Path(path).parts
    where = "/".join(parts[parts.index("site-packages") + 1:] if "site-packages" in parts else parts[-2:])
    return f"{where}:{name}"


def environs(numbers, count, seed):
    """`count` WSGI environs of signed voice webhooks of new calls, built before anything is timed."""
    requests = Requests(numbers, 8000, seed, auth_token=os.environ["TWILIO_AUTH_TOKEN"])
    built = []
    for _ in range(count):
        to = requests.rng.choice(numbers)
        params = {**requests.call_params(to, requests.caller(), "CA" + random.Random().randbytes(16).hex()),
                  "CallStatus": "ringing"}
        body, signature = requests.signed("/twilio/voice", params)
        built.append(EnvironBuilder(
            path="/twilio/voice", method="POST", base_url="http://127.0.0.1:8000", data=body,
            content_type="application/x-www-form-urlencoded",
            headers={"X-Twilio-Signature": signature, "User-Agent": "TwilioProxy/1.1"}).get_environ())
    return built


def serve(app, batch):
    """Answer each environ in `batch` as a WSGI server does; the number of answers that were not 200."""
    failed = 0
    for environ in batch:
        status = []
        body = app(environ, lambda code, headers, exc_info=None, status=status: status.append(code))
        for _chunk in body:
            pass
        if hasattr(body, "close"):
            body.close()
        failed += not status[0].startswith("200")
    return failed


def profiled(app, batch, timer):
    profile = cProfile.Profile(timer)
    profile.enable()
    serve(app, batch)
    profile.disable()
    profile.create_stats()
    return bucket_times(profile.stats)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("numbers_file", help="tracking numbers to call, one a line")
    parser.add_argument("--requests", type=int, default=2000, help="voice webhooks of each measured pass")
    args = parser.parse_args()
    numbers = Path(args.numbers_file).read_text().split()
    logging.disable(logging.INFO)  # Alembic and the app log their start-up at INFO.

    from wsgi import app

    batches = [environs(numbers, count, seed) for seed, count in
               enumerate((200, args.requests, args.requests, args.requests))]
    if serve(app, batches[0]):
        sys.exit("bench/webhook_cpu_split.py: the voice webhook did not answer 200 in the warm-up")
    cpu, wall = time.thread_time(), time.perf_counter()
    failed = serve(app, batches[1])
    cpu_us = (time.thread_time() - cpu) / args.requests * 1e6
    wall_us = (time.perf_counter() - wall) / args.requests * 1e6
    cpu_times, dearest = profiled(app, batches[2], time.thread_time)
    wall_times, _ = profiled(app, batches[3], time.perf_counter)
    cpu_total, wall_total = sum(cpu_times.values()), sum(wall_times.values())

    print(f"CPU per voice webhook, in one web process: {args.requests:,} signed voice webhooks of new calls, one at"
          f" a time through the WSGI app; {cpu_us:,.0f} us of CPU and {wall_us:,.0f} us of wall time each"
          + (f"; {failed} not answered 200" if failed else ""))
    print(f"{'phase':<38}{'CPU us':>8}{'share':>7}{'wall us':>9}  dearest functions (CPU)")
    for bucket in BUCKETS:
        share = cpu_times[bucket] / cpu_total if cpu_total else 0
        wall_share = wall_times[bucket] / wall_total if wall_total else 0
        names = ", ".join(f"{name} {seconds / cpu_total * cpu_us:.0f}" for seconds, name in dearest.get(bucket, ())
                          if cpu_total and seconds / cpu_total * cpu_us >= 1)
        print(f"{bucket:<38}{share * cpu_us:>8.0f}{share:>7.0%}{wall_share * wall_us:>9.0f}  {names}")
    print(f"(under cProfile a request took {cpu_total / args.requests * 1e6:,.0f} us of CPU: the shares come from "
          "there; wall minus CPU is waiting: the log's fsync, the database, other threads)")


if __name__ == "__main__":
    main()
