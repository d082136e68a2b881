"""How many signed Twilio webhooks phoneapp answers under gunicorn on PostgreSQL, against a bare endpoint.

Starts a private PostgreSQL server on its own port (never a shared one), migrates it, seeds clients,
assigned tracking numbers and a call history, writes the routing cache, and serves one WSGI app with
gunicorn (gthread): phoneapp, with a bare Flask endpoint that returns fixed TwiML mounted beside it at
/bare (bench/webhooks_app.py). wrk then sends correctly signed requests at 16 connections, first to the
bare endpoint, then to phoneapp in two modes: voice-only (every request the voice webhook of a new call) and
mixed, each call as Twilio would: the voice webhook (a new CallSid every call), then the call's status
callbacks (ringing, in-progress), the <Dial action> (DialCallStatus completed) and the final status
(completed). Prints requests/s, each mode's ratio to the bare endpoint, latency percentiles, the CPU time
each request cost the web processes, PostgreSQL and wrk (and how much of the machine other processes took,
which lowers both throughputs), the web processes' memory, the call records written against the voice
webhooks sent, and the goals of SPEC §11. wrk keeps every connection busy, so latency is about
connections / throughput: the p99 goal follows the throughput.

Before the load, the CPU of one voice webhook is split by phase in a process of its own
(bench/webhook_cpu_split.py): framework, signature check, log append, routing, TwiML, security headers.
After it, a number is moved to another client through the API and called until every web process rings the
new phone (bench/webhook_propagation.py): the time a routing change takes to reach every process.

One client in ten screens its calls (a failover number rung in turn, a whisper and press 1 for whoever picks
up). Last, each webhook route runs alone for --route-seconds at the same connections
(bench/webhook_routes.py), and a table gives its requests/s, p50 and p99, non-2xx answers and CPU per request.

    .venv/bin/python bench/webhooks.py [--mode both|voice|mixed] [--duration 20] [--warmup 5] [--connections 16]
                                       [--workers N] [--threads 4] [--numbers 10000] [--clients 5000]
                                       [--history 200000] [--cpu-requests 2000] [--changes 3] [--route-seconds 5]

Linux only (CPU time and memory come from /proc). Needs wrk (`apt-get install wrk`, or build it from
https://github.com/wg/wrk) and PostgreSQL's server programs (initdb, pg_ctl; `apt-get install postgresql`,
or PG_BIN naming their directory). Exits non-zero only when the setup fails, not when a goal is missed.
"""
import argparse
import logging
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from bench import webhook_propagation, webhook_routes  # noqa: E402
from bench.webhook_calls import AUTH_TOKEN, BLOCK, WRK_THREADS, Requests, fail  # noqa: E402
from bench.webhook_database import app_environ, current_counts, prepare_database, wait_for_writes  # noqa: E402
from bench.webhook_load import (  # noqa: E402
    WRK_SCRIPT,
    CpuMeter,
    child_pids,
    machine,
    memory_mb,
    run_wrk,
    start_gunicorn,
    stop_gunicorn,
)
from bench.webhook_report import report, report_goals  # noqa: E402
from tests.support.ports import free_port  # noqa: E402
from tests.support.private_postgres import PostgresServer  # noqa: E402

# phoneapp's default, which the web processes run with: the longest a change could take without a notice.
ROUTING_CACHE_REFRESH_SECONDS = 60
MODES = {"both": ("voice-only", "mixed"), "voice": ("voice-only",), "mixed": ("mixed",)}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=sorted(MODES), default="both",
                        help="voice-only (only voice webhooks), mixed (whole calls), or both, each against bare")
    parser.add_argument("--duration", type=int, default=20, help="seconds of each measured run")
    parser.add_argument("--warmup", type=int, default=5, help="seconds of warm-up before each measured run")
    parser.add_argument("--connections", type=int, default=16, help="concurrent connections of the load generator")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2, help="gunicorn web processes")
    # 4 did better than 8 on a 2-CPU machine: fewer threads taking turns on the GIL.
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn web process")
    parser.add_argument("--numbers", type=int, default=10_000, help="assigned tracking numbers")
    parser.add_argument("--clients", type=int, default=5_000, help="clients the numbers belong to")
    parser.add_argument("--history", type=int, default=200_000, help="call records already in the database")
    parser.add_argument("--cpu-requests", type=int, default=2000,
                        help="voice webhooks of each in-process pass splitting the CPU by phase (0: none)")
    parser.add_argument("--changes", type=int, default=3,
                        help="routing changes timed until every web process has them (0: none)")
    parser.add_argument("--route-seconds", type=int, default=5,
                        help="seconds each webhook route runs alone after the mixed runs (0: none)")
    parser.add_argument("--keep", action="store_true", help="leave the database and gunicorn up until Enter")
    return parser.parse_args()


def split_cpu(environ, tracked, requests_per_pass, work_dir):
    """Run bench/webhook_cpu_split.py in a process set up as a web process, with a webhook log of its own."""
    instance = Path(work_dir) / "cpu-split"
    instance.mkdir()
    numbers_file = instance / "numbers.txt"
    numbers_file.write_text("\n".join(tracked))
    env = {key: value for key, value in os.environ.items()
           if key in ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "VIRTUAL_ENV")}
    env.update(environ, INSTANCE_PATH=str(instance))
    print()
    sys.stdout.flush()
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "webhook_cpu_split.py"), str(numbers_file),
                             "--requests", str(requests_per_pass)], cwd=instance, env=env, check=False)
    if result.returncode != 0:
        print(f"the CPU split failed ({result.returncode})")


def load_run(wrk, script, prefix, port, args, meter, database_url, whole_calls):
    """A measured wrk run, then the wait until its calls are all in the database; wrk's figures with both."""
    before = current_counts(database_url)
    figures = run_wrk(wrk, script, prefix, port, args.duration, args.connections, meter)
    # phoneapp may write to the database behind its answers: the run ends when its calls are all in.
    figures["caught_up"], figures["after"] = wait_for_writes(database_url, before, figures, whole_calls=whole_calls)
    figures["cpu_written"] = CpuMeter.difference(figures["cpu_start"], meter.snapshot())
    figures["before"], figures["whole_calls"] = before, whole_calls
    return figures


def run_mode(mode, wrk, script, requests, prefix, port, args, meter, database_url):
    """Warm up, then measure one mode: (its figures, the warm-up's requests/s)."""
    whole_calls = mode == "mixed"
    write = requests.write if whole_calls else requests.write_voice
    write(f"{prefix}-{mode}-warm", 2000)
    before = current_counts(database_url)
    warm = run_wrk(wrk, script, f"{prefix}-{mode}-warm", port, args.warmup, args.connections)
    # The measured run must not pay for writing what the warm-up left behind.
    wait_for_writes(database_url, before, warm, whole_calls=whole_calls)
    # Enough that no CallSid comes round again, with room for the run to be faster than its warm-up.
    per_request = 1 / 5 if whole_calls else 1
    write(f"{prefix}-{mode}", int(warm["rps"] * args.duration * 3 * per_request / WRK_THREADS) + BLOCK)
    return load_run(wrk, script, f"{prefix}-{mode}", port, args, meter, database_url, whole_calls), warm["rps"]


def main():
    args = parse_args()
    logging.disable(logging.INFO)  # Alembic and the app log their start-up at INFO.

    wrk = shutil.which("wrk")
    if wrk is None:
        fail("wrk is not installed: `apt-get install wrk` (Debian/Ubuntu), or build it from https://github.com/wg/wrk")

    work = tempfile.TemporaryDirectory(prefix="phoneapp-bench-webhooks-")
    instance = Path(work.name) / "instance"
    instance.mkdir()
    script = Path(work.name) / "webhooks.lua"
    script.write_text(WRK_SCRIPT)
    script = str(script)
    try:
        # Durable like a production server: the webhook log fsyncs each webhook, so the database must too.
        server = PostgresServer(settings={"fsync": "on"})
    except (RuntimeError, OSError, subprocess.CalledProcessError) as exc:
        fail(f"cannot create a private PostgreSQL server: {exc}")
    gunicorn = None
    try:
        server.start()
        database_url = server.url
        with psycopg.connect(database_url) as conn:
            pg_version = conn.execute("SHOW server_version").fetchone()[0]
        environ = app_environ(database_url, str(instance))
        started = time.perf_counter()
        tracked, screened, token = prepare_database(environ, random.Random(2026), args.numbers, args.clients,
                                                    args.history)
        seeded = time.perf_counter() - started
        import gunicorn as gunicorn_package

        print(f"machine  : {machine()}, load average {os.getloadavg()[0]:.1f} before the runs")
        print(f"software : Python {platform.python_version()}, PostgreSQL {pg_version} (private, fsync on), "
              f"gunicorn {gunicorn_package.__version__} -k gthread -w {args.workers} --threads {args.threads}, "
              f"wrk -t {WRK_THREADS} -c {args.connections}")
        print(f"database : migrated and seeded in {seeded:.1f} s: {args.clients:,} clients, {args.numbers:,} assigned "
              f"numbers, {args.history:,} earlier calls; routing cache written; {len(screened)} numbers screened "
              "(failover, whisper, press 1)")
        if args.cpu_requests > 0:
            split_cpu(environ, tracked, args.cpu_requests, work.name)

        port = free_port()
        gunicorn, log_path = start_gunicorn(environ, port, args.workers, args.threads, work.name)
        postmaster = int(Path(server.data_dir, "postmaster.pid").read_text().split()[0])
        meter = CpuMeter(gunicorn.pid, postmaster)
        modes = MODES[args.mode]
        print(f"\nruns     : {args.warmup} s warm-up, then {args.duration} s measured: bare endpoint, then "
              + ", ".join(modes) + "; voice-only = each request the voice webhook of a new call; mixed = each call"
              " voice, status ringing, status in-progress, dial-status completed, status completed\n")

        requests = Requests(tracked, port, seed=7, auth_token=AUTH_TOKEN)
        prefix = str(Path(work.name) / "requests")
        # The bare endpoint keeps nothing, so a small set of requests may repeat.
        requests.write(prefix + "-bare", 1000, prefix="/bare")
        run_wrk(wrk, script, prefix + "-bare", port, args.warmup, args.connections)
        bare = run_wrk(wrk, script, prefix + "-bare", port, args.duration, args.connections, meter)
        runs, fastest_warm = {}, 0
        for mode in modes:
            runs[mode], warm_rps = run_mode(mode, wrk, script, requests, prefix, port, args, meter, database_url)
            fastest_warm = max(fastest_warm, warm_rps, runs[mode]["rps"])
        memory = {pid: memory_mb(pid) for pid in child_pids(gunicorn.pid)}
        ratios, max_rss = report(bare, runs, memory, log_path)

        propagation = None
        if args.changes > 0:
            propagation = webhook_propagation.measure(
                requests, port, token, database_url, child_pids(gunicorn.pid), changes=args.changes,
                timeout=ROUTING_CACHE_REFRESH_SECONDS + 15)
        report_goals(runs, ratios, max_rss, propagation)

        if args.route_seconds > 0:
            # No route is faster than the bare endpoint, nor, by far, than the runs: enough calls not to come round.
            rate = min(bare["rps"], 4 * fastest_warm)

            def run_route(path_prefix, seconds):
                return run_wrk(wrk, script, path_prefix, port, seconds, args.connections, meter)

            rows = webhook_routes.measure(
                requests, run_route, database_url, prefix + "-route", plain=sorted(set(tracked) - set(screened)),
                screened=screened, per_thread=int(rate * args.route_seconds * 1.25 / WRK_THREADS) + BLOCK,
                seconds=args.route_seconds)
            webhook_routes.report(rows, args.route_seconds, args.connections, len(screened))
        if args.keep:
            input(f"\nphoneapp on http://127.0.0.1:{port}, database {database_url}; Enter stops them. ")
    finally:
        if gunicorn is not None:
            stop_gunicorn(gunicorn)
        server.destroy()
        work.cleanup()


if __name__ == "__main__":
    main()
