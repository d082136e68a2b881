"""How many signed Twilio webhooks phoneapp answers under gunicorn on PostgreSQL, against a bare endpoint.

Starts a private PostgreSQL server on its own port (never a shared one), migrates it, seeds clients,
assigned tracking numbers and a call history, writes the routing cache, and serves one WSGI app with
gunicorn (gthread): phoneapp, with a bare Flask endpoint that returns fixed TwiML mounted beside it at
/bare (bench/webhooks_app.py). wrk then sends correctly signed requests at 16 connections, first to the
bare endpoint, then to phoneapp, each call as Twilio would: the voice webhook (a new CallSid every
call), then the call's status callbacks (ringing, in-progress), the <Dial action> (DialCallStatus
completed) and the final status (completed). Prints requests/s, the ratio, latency percentiles, the CPU
time each request cost the web processes, PostgreSQL and wrk (and how much of the machine other
processes took, which lowers both throughputs), the web processes' memory, the call records written
against the voice webhooks sent, and the goals: phoneapp >= 0.5 x the bare endpoint's throughput, p99
under 50 ms, each web process under 150 MB. wrk keeps every connection busy, so latency is about
connections / throughput: the p99 goal follows the throughput.

One client in ten screens its calls (a failover number rung in turn, a whisper and press 1 for whoever picks
up). After the mixed runs, each webhook route runs alone for --route-seconds at the same connections
(bench/webhook_routes.py), and a table gives its requests/s, p50 and p99, non-2xx answers and CPU per request:
/twilio/voice, for a number that rings one phone and for a screened one (whose <Dial> rings a <Number url> of
/twilio/whisper); /twilio/whisper (what the person who picks up hears, answered from its URL alone);
/twilio/accept (Digits=1); /twilio/dial-status?attempt=0 of a pickup that did not press 1 (answered with the
failover's <Dial>) and the plain /twilio/dial-status; /twilio/dial-events, /twilio/status and /twilio/recording.
The screened routes' URLs are the ones phoneapp's own TwiML gives.

    .venv/bin/python bench/webhooks.py [--duration 20] [--warmup 5] [--connections 16] [--workers N]
                                       [--threads 8] [--numbers 1000] [--history 200000] [--route-seconds 5]

Linux only (CPU time and memory come from /proc). Needs wrk (`apt-get install wrk`, or build it from
https://github.com/wg/wrk) and PostgreSQL's server programs (initdb, pg_ctl; `apt-get install postgresql`,
or PG_BIN naming their directory). Exits non-zero only when the setup fails, not when a goal is missed.
"""
import argparse
import json
import logging
import os
import platform
import random
import resource
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from twilio.request_validator import RequestValidator  # noqa: E402

from bench import webhook_routes  # noqa: E402
from tests.support.ports import free_port  # noqa: E402
from tests.support.private_postgres import PostgresServer  # noqa: E402

# Signatures are checked against this address, not the one wrk connects to: as behind a TLS proxy.
PUBLIC_BASE_URL = "https://calls.bench.example"
ACCOUNT_SID = "AC" + "b3" * 16
AUTH_TOKEN = secrets.token_hex(16)
SECRET_KEY = secrets.token_urlsafe(48)
GOAL_RATIO, GOAL_P99_MS, GOAL_RSS_MB = 0.5, 50, 150
WRK_THREADS = 2
# One client in this many rings a failover number after its own, with a whisper and press 1 to accept.
SCREENED_EVERY = 10
# Calls are sent in blocks: every voice webhook of a block, then every "ringing" of it, and so on, so that
# the requests of one call are a block apart, as Twilio's callbacks of one call are seconds apart.
BLOCK = 64
AREA_CODES = ("415", "312", "206", "512", "617", "303", "404", "702", "919", "503")
PLACES = (("San Francisco", "CA", "94103"), ("Chicago", "IL", "60601"), ("Seattle", "WA", "98101"),
          ("Austin", "TX", "78701"), ("Boston", "MA", "02108"), ("Denver", "CO", "80202"))

# Each wrk thread reads its own file of raw requests ("<kind> <bytes>\n<request>"), so no CallSid is sent
# twice; done() prints one JSON line the benchmark parses.
WRK_SCRIPT = r"""
local prefix = os.getenv("BENCH_REQUESTS")
local threads = {}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  local file = assert(io.open(prefix .. "." .. tid, "rb"))
  local data = file:read("*a")
  file:close()
  reqs, kinds = {}, {}
  local pos = 1
  while pos <= #data do
    local newline = data:find("\n", pos, true)
    local kind, size = data:sub(pos, newline - 1):match("^(%a+) (%d+)$")
    size = tonumber(size)
    reqs[#reqs + 1] = data:sub(newline + 1, newline + size)
    kinds[#kinds + 1] = kind
    pos = newline + 1 + size
  end
  count, at, voice, sent, wrapped = #reqs, 0, 0, 0, 0
  -- wrk calls thread 0's request() once before the run to inspect it, and sends nothing of it.
  inspected = tid ~= 0
end

function request()
  if not inspected then
    inspected = true
    return reqs[1]
  end
  at = at + 1
  if at > count then
    at, wrapped = 1, wrapped + 1
  end
  sent = sent + 1
  if kinds[at] == "v" then
    voice = voice + 1
  end
  return reqs[at]
end

function done(summary, latency, requests)
  local voice_sent, all_sent, wraps, per_thread = 0, 0, 0, {}
  for _, thread in ipairs(threads) do
    voice_sent = voice_sent + thread:get("voice")
    all_sent = all_sent + thread:get("sent")
    wraps = wraps + thread:get("wrapped")
    per_thread[#per_thread + 1] = tostring(thread:get("sent"))
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests": %d, "requests_per_s": %.1f, "duration_us": %d, "bad_status": %d, '
    .. '"connect_errors": %d, "read_errors": %d, "write_errors": %d, "timeouts": %d, '
    .. '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, "voice_sent": %d, "sent": %d, "wrapped": %d, '
    .. '"sent_per_thread": [%s]}\n',
    summary.requests, summary.requests / (summary.duration / 1e6), summary.duration,
    e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    voice_sent, all_sent, wraps, table.concat(per_thread, ", ")))
end
"""


def fail(message):
    sys.exit(f"bench/webhooks.py: {message}")


def phone(rng):
    return f"+1{rng.choice(AREA_CODES)}{rng.randint(200, 999)}{rng.randint(0, 9999):04d}"


def machine():
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")),
                 platform.processor() or "unknown CPU")
    meminfo = Path("/proc/meminfo").read_text() if Path("/proc/meminfo").exists() else ""
    total_kb = next((int(line.split()[1]) for line in meminfo.splitlines() if line.startswith("MemTotal:")), 0)
    return f"{model}, {os.cpu_count()} CPUs, {total_kb / 1024 / 1024:.1f} GB RAM, {platform.platform()}"


# --- database ---------------------------------------------------------------------------------------------

def app_environ(database_url, instance_path):
    return {"SECRET_KEY": SECRET_KEY, "DATABASE_URL": database_url, "PUBLIC_BASE_URL": PUBLIC_BASE_URL,
            "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "INSTANCE_PATH": instance_path}


def prepare_database(environ, rng, numbers, clients, history):
    """Migrate, seed clients, assigned numbers and a call history, and write the routing cache.

    Returns the tracking numbers, and those of them whose client screens its calls.
    """
    from flask_migrate import upgrade

    from phoneapp import create_app
    from phoneapp.extensions import db
    from phoneapp.models import Client, PhoneAssignment
    from phoneapp.services.routing_table import refresh_routing_cache, routing_cache

    app = create_app(environ=environ)
    with app.app_context():
        upgrade()
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
        refresh_routing_cache()
        cached = len(routing_cache())
        db.engine.dispose()
    if cached != numbers:
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
    return tracked, [number for i, number in enumerate(tracked) if i % clients % SCREENED_EVERY == 0]


def calls_fully_sent(sent_per_thread):
    """Calls whose five requests wrk sent, from how many requests each thread sent (blocks of BLOCK calls)."""
    total = 0
    for sent in sent_per_thread:
        blocks, rest = divmod(sent, 5 * BLOCK)
        total += blocks * BLOCK + max(0, rest - 4 * BLOCK)
    return total


def wait_for_writes(database_url, before, figures, timeout=180):
    """Seconds from the end of a run until all its calls are in the database (None: they never were), counts."""
    voice = before[1] + figures["voice_sent"]
    completed = before[2] + calls_fully_sent(figures["sent_per_thread"])
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


# --- requests ---------------------------------------------------------------------------------------------

class Requests:
    """Raw, signed HTTP requests of whole calls, as Twilio sends them."""

    account_sid = ACCOUNT_SID

    def __init__(self, tracked, port, seed):
        self.tracked = tracked
        self.host = f"127.0.0.1:{port}"
        self.validator = RequestValidator(AUTH_TOKEN)
        self.rng = random.Random(seed)

    def signed(self, path, params):
        """The body of `params` POSTed to `path` (and its query), and its X-Twilio-Signature."""
        return urlencode(params), self.validator.compute_signature(PUBLIC_BASE_URL + path, params)

    def raw(self, path, params, prefix=""):
        body, signature = self.signed(path, params)
        return (f"POST {prefix}{path} HTTP/1.1\r\nHost: {self.host}\r\nUser-Agent: TwilioProxy/1.1\r\n"
                f"Accept: */*\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                f"X-Twilio-Signature: {signature}\r\nContent-Length: {len(body)}\r\n\r\n{body}").encode()

    def post(self, path, params):
        """Send one signed request now and return the answer (bytes); anything but a 200 ends the benchmark."""
        body, signature = self.signed(path, params)
        request = urllib.request.Request(
            f"http://{self.host}{path}", data=body.encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.read()
        except urllib.error.HTTPError as error:
            fail(f"POST {path} answered {error.code}: {error.read()[:300]!r}")

    @staticmethod
    def public_path(url):
        """The path and query of a URL phoneapp gave Twilio."""
        if not (url or "").startswith(PUBLIC_BASE_URL + "/"):
            fail(f"{url!r} is not under {PUBLIC_BASE_URL}")
        return url[len(PUBLIC_BASE_URL):]

    def caller(self):
        return phone(self.rng)

    def call_params(self, to, caller, call_sid):
        """What every request of the inbound call `call_sid` from `caller` to `to` carries."""
        city, state, zip_code = self.rng.choice(PLACES)
        return {"AccountSid": ACCOUNT_SID, "ApiVersion": "2010-04-01", "CallSid": call_sid, "Called": to,
                "CalledCountry": "US", "Caller": caller, "CallerCity": city, "CallerCountry": "US",
                "CallerState": state, "CallerZip": zip_code, "Direction": "inbound", "From": caller,
                "FromCity": city, "FromCountry": "US", "FromState": state, "FromZip": zip_code, "To": to,
                "ToCountry": "US"}

    def call(self, prefix=""):
        """The five requests of one forwarded, answered call: [(kind, raw request)] in Twilio's order."""
        rng = self.rng
        to = rng.choice(self.tracked)
        base = self.call_params(to, phone(rng), "CA" + secrets.token_hex(16))
        talk = rng.randint(20, 400)

        def status(value, sequence, **extra):
            return {**base, "CallStatus": value, "CallbackSource": "call-progress-events",
                    "SequenceNumber": str(sequence), "Timestamp": "Tue, 24 Nov 2026 10:00:00 +0000", **extra}

        return [
            ("v", self.raw("/twilio/voice", {**base, "CallStatus": "ringing"}, prefix)),
            ("s", self.raw("/twilio/status", status("ringing", 0), prefix)),
            ("s", self.raw("/twilio/status", status("in-progress", 1), prefix)),
            ("d", self.raw("/twilio/dial-status", {**base, "CallStatus": "in-progress", "DialBridged": "true",
                                                   "DialCallSid": "CA" + secrets.token_hex(16),
                                                   "DialCallStatus": "completed",
                                                   "DialCallDuration": str(talk)}, prefix)),
            ("s", self.raw("/twilio/status", status("completed", 2, CallDuration=str(talk + 6),
                                                    Duration=str(talk // 60 + 1)), prefix)),
        ]

    def write(self, path_prefix, calls_per_thread, prefix=""):
        """One file per wrk thread, `path_prefix`.<thread>; returns how many requests each holds."""
        for thread in range(WRK_THREADS):
            with open(f"{path_prefix}.{thread}", "wb") as out:
                for start in range(0, calls_per_thread, BLOCK):
                    block = [self.call(prefix) for _ in range(min(BLOCK, calls_per_thread - start))]
                    for step in range(5):
                        for call in block:
                            out.write(wrk_entry(*call[step]))
        return calls_per_thread * 5

    @staticmethod
    def write_each(path_prefix, per_thread, make):
        """One file per wrk thread of `per_thread` requests, each (kind, raw request) from `make()`."""
        for thread in range(WRK_THREADS):
            with open(f"{path_prefix}.{thread}", "wb") as out:
                for _ in range(per_thread):
                    out.write(wrk_entry(*make()))


def wrk_entry(kind, raw):
    """One request as WRK_SCRIPT reads it."""
    return f"{kind} {len(raw)}\n".encode() + raw


# --- gunicorn and wrk -------------------------------------------------------------------------------------

def start_gunicorn(environ, port, workers, threads, work_dir):
    log_path = Path(work_dir) / "gunicorn.log"
    # The working directory is the empty instance directory: a developer's .env must not leak in.
    env = {key: value for key, value in os.environ.items()
           if key in ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "VIRTUAL_ENV")}
    env.update(environ)
    log = open(log_path, "wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-k", "gthread", "-w", str(workers), "--threads", str(threads),
         "-b", f"127.0.0.1:{port}", "--no-control-socket", "--pythonpath", str(ROOT / "bench"),
         "--log-level", "warning", "webhooks_app:app"],
        cwd=environ["INSTANCE_PATH"], env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            fail(f"gunicorn exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}/bare/", data=b""),
                                        timeout=2) as response:
                if response.status == 200 and len(child_pids(process.pid)) == workers:
                    return process, log_path
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    process.kill()
    fail(f"gunicorn did not answer within 60 s:\n{log_path.read_text()[-3000:]}")


def stop_gunicorn(process):
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class CpuMeter:
    """CPU seconds of the web processes, PostgreSQL, wrk and the whole machine, to split a run's cost."""

    def __init__(self, gunicorn_pid, postmaster_pid):
        self.pids = {"web": gunicorn_pid, "db": postmaster_pid}
        self.tick = os.sysconf("SC_CLK_TCK")

    def process_tree(self, pid):
        total = 0
        for one in (pid, *child_pids(pid)):
            try:
                fields = Path(f"/proc/{one}/stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])
            if one == pid:
                # Children that ended (a PostgreSQL backend, a restarted web process) count in their parent.
                total += int(fields[13]) + int(fields[14])
        return total / self.tick

    def snapshot(self):
        cpu = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
        # Every column but idle (3) and iowait (4) is the machine at work, ours or not.
        busy = sum(int(value) for index, value in enumerate(cpu[:8]) if index not in (3, 4))
        # wrk is the only child this script waits for while gunicorn runs.
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return {"web": self.process_tree(self.pids["web"]), "db": self.process_tree(self.pids["db"]),
                "wrk": children.ru_utime + children.ru_stime, "machine": busy / self.tick, "at": time.monotonic()}

    @staticmethod
    def difference(before, after):
        return {key: after[key] - before[key] for key in before}


def child_pids(parent_pid):
    pids = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
        except OSError:
            continue
        if fields.get("PPid", "").strip() == str(parent_pid):
            pids.append(int(status.parent.name))
    return sorted(pids)


def memory_mb(pid):
    """(current, peak) resident memory of a process in MB, from /proc."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                  if ":" in line)
    return tuple(int(fields[name].split()[0]) / 1024 for name in ("VmRSS", "VmHWM"))


def run_wrk(wrk, script, requests_prefix, port, seconds, connections, meter=None):
    env = {**os.environ, "BENCH_REQUESTS": requests_prefix}
    before = meter.snapshot() if meter else None
    result = subprocess.run(
        [wrk, "-t", str(WRK_THREADS), "-c", str(connections), "-d", f"{seconds}s", "--timeout", "5s",
         "-s", script, f"http://127.0.0.1:{port}/"],
        env=env, capture_output=True, text=True, check=False)
    cpu = CpuMeter.difference(before, meter.snapshot()) if meter else None
    line = next((line for line in result.stdout.splitlines() if line.startswith("BENCH ")), None)
    if result.returncode != 0 or line is None:
        fail(f"wrk failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    figures = json.loads(line[len("BENCH "):])
    figures["rps"] = figures["requests_per_s"]
    figures["cpu"], figures["cpu_start"] = cpu, before
    return figures


def ms(microseconds):
    return microseconds / 1000


def cpu_row(name, cpu, count):
    capacity = cpu["at"] * (os.cpu_count() or 1)
    others = max(cpu["machine"] - cpu["web"] - cpu["db"] - cpu["wrk"], 0)
    return (f"{name:<22}{cpu['web'] * 1000 / count:>11.2f}{cpu['db'] * 1000 / count:>11.2f}"
            f"{cpu['wrk'] * 1000 / count:>12.2f}{cpu['machine'] / capacity:>14.0%}{others / capacity:>15.0%}")


def report(bare, app, caught_up, before, after, memory, log_path):
    seconds = app["duration_us"] / 1e6
    # Answers the database has not taken yet are not throughput: count the time it took to catch up.
    sustained = app["requests"] / (seconds + (caught_up or 0))
    ratio = sustained / bare["rps"] if bare["rps"] else 0
    max_rss = max(rss for rss, _ in memory.values())
    max_peak = max(peak for _, peak in memory.values())
    print(f"{'':<12}{'requests/s':>12}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'max ms':>9}"
          f"{'requests':>10}{'4xx/5xx':>9}{'errors':>8}")
    for name, figures in (("bare", bare), ("phoneapp", app)):
        errors = sum(figures[key] for key in ("connect_errors", "read_errors", "write_errors", "timeouts"))
        print(f"{name:<12}{figures['rps']:>12,.0f}{ms(figures['p50_us']):>9.1f}{ms(figures['p90_us']):>9.1f}"
              f"{ms(figures['p99_us']):>9.1f}{ms(figures['max_us']):>9.1f}{figures['requests']:>10,}"
              f"{figures['bad_status']:>9}{errors:>8}")
    print(f"\n{'CPU per request':<22}{'web ms':>11}{'db ms':>11}{'wrk ms':>12}{'machine busy':>14}"
          f"{'of it, others':>15}")
    print(cpu_row("bare", bare["cpu"], max(bare["requests"], 1)))
    print(cpu_row("phoneapp, answering", app["cpu"], max(app["requests"], 1)))
    print(cpu_row("phoneapp, all written", app["cpu_written"], max(app["requests"], 1)))

    written = (f"all in the database {caught_up:.1f} s after the run" if caught_up is not None
               else "NOT all in the database 10 s after the last change")
    print(f"\nwrites   : {written}; {sustained:,.0f} requests/s counting that time")
    print(f"ratio    : phoneapp / bare = {ratio:.2f}")
    print(f"memory   : largest web process {max_rss:.0f} MB resident (peak {max_peak:.0f} MB); "
          + ", ".join(f"worker {pid} {rss:.0f} MB" for pid, (rss, _) in memory.items()))
    new_records, new_routed, new_completed = (a - b for a, b in zip(after, before, strict=True))
    fully_sent = calls_fully_sent(app["sent_per_thread"])
    print(f"records  : {app['voice_sent']:,} voice webhooks sent, {new_records:,} call records written, "
          f"{new_routed:,} routed by the voice webhook; {fully_sent:,} calls sent to the end, "
          f"{new_completed:,} recorded completed and answered"
          + (f"; WARNING: the request list came round {app['wrapped']} times, CallSids repeated"
             if app["wrapped"] else ""))
    problems = [line for line in log_path.read_text().splitlines() if "Traceback" in line or "ERROR" in line]
    if problems:
        print(f"server   : {len(problems)} errors logged, the first: {problems[0][:200]}")
    goals = [(f"throughput >= {GOAL_RATIO} x bare", ratio >= GOAL_RATIO, f"{ratio:.2f}"),
             (f"p99 < {GOAL_P99_MS} ms", ms(app["p99_us"]) < GOAL_P99_MS, f"{ms(app['p99_us']):.1f} ms"),
             (f"web process < {GOAL_RSS_MB} MB", max_rss < GOAL_RSS_MB, f"{max_rss:.0f} MB")]
    correct = (app["bad_status"] == 0 and not app["wrapped"] and new_routed == app["voice_sent"]
               and new_records == app["voice_sent"] and new_completed >= fully_sent)
    goals.append(("no 4xx/5xx, every call recorded", correct,
                  f"{app['bad_status']} 4xx/5xx, {new_routed:,}/{app['voice_sent']:,} calls"))
    print("\ngoals:")
    for name, met, value in goals:
        print(f"  {name:<36}{value:>30}  {'met' if met else 'MISSED'}")


# --- main -------------------------------------------------------------------------------------------------

def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=20, help="seconds of each measured run")
    parser.add_argument("--warmup", type=int, default=5, help="seconds of warm-up before each measured run")
    parser.add_argument("--connections", type=int, default=16, help="concurrent connections of the load generator")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2, help="gunicorn web processes")
    # 8 did better than 4 here: one thread per connection, so no request waits for a thread while others
    # wait on PostgreSQL.
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn web process")
    parser.add_argument("--numbers", type=int, default=1000, help="assigned tracking numbers")
    parser.add_argument("--clients", type=int, default=300, help="clients the numbers belong to")
    parser.add_argument("--history", type=int, default=200_000, help="call records already in the database")
    parser.add_argument("--route-seconds", type=int, default=5,
                        help="seconds each webhook route runs alone after the mixed runs (0: none)")
    parser.add_argument("--keep", action="store_true", help="leave the database and gunicorn up until Enter")
    args = parser.parse_args()
    logging.disable(logging.INFO)  # Alembic and the app log their start-up at INFO.

    wrk = shutil.which("wrk")
    if wrk is None:
        fail("wrk is not installed: `apt-get install wrk` (Debian/Ubuntu), or build it from https://github.com/wg/wrk")

    work = tempfile.TemporaryDirectory(prefix="phoneapp-bench-webhooks-")
    instance = Path(work.name) / "instance"
    instance.mkdir()
    script = Path(work.name) / "webhooks.lua"
    script.write_text(WRK_SCRIPT)
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
        tracked, screened = prepare_database(environ, random.Random(2026), args.numbers, args.clients,
                                             args.history)
        seeded = time.perf_counter() - started
        port = free_port()
        gunicorn, log_path = start_gunicorn(environ, port, args.workers, args.threads, work.name)
        postmaster = int(Path(server.data_dir, "postmaster.pid").read_text().split()[0])
        meter = CpuMeter(gunicorn.pid, postmaster)
        import gunicorn as gunicorn_package

        print(f"machine  : {machine()}, load average {os.getloadavg()[0]:.1f} before the runs")
        print(f"software : Python {platform.python_version()}, PostgreSQL {pg_version} (private, fsync on), "
              f"gunicorn {gunicorn_package.__version__} -k gthread -w {args.workers} --threads {args.threads}, "
              f"wrk -t {WRK_THREADS} -c {args.connections}")
        print(f"database : migrated and seeded in {seeded:.1f} s: {args.clients} clients, {args.numbers} assigned "
              f"numbers, {args.history:,} earlier calls; routing cache written; {len(screened)} numbers screened "
              "(failover, whisper, press 1)")
        print(f"runs     : {args.warmup} s warm-up, then {args.duration} s measured, bare endpoint first; "
              "each call = voice, status ringing, status in-progress, dial-status completed, status completed\n")

        requests = Requests(tracked, port, seed=7)
        prefix = str(Path(work.name) / "requests")
        # The bare endpoint keeps nothing, so a small set of requests may repeat.
        requests.write(prefix + "-bare", 1000, prefix="/bare")
        run_wrk(wrk, str(script), prefix + "-bare", port, args.warmup, args.connections)
        bare = run_wrk(wrk, str(script), prefix + "-bare", port, args.duration, args.connections, meter)

        requests.write(prefix + "-warm", 2000)
        before = current_counts(database_url)
        warm = run_wrk(wrk, str(script), prefix + "-warm", port, args.warmup, args.connections)
        # The measured run must not pay for writing what the warm-up left behind.
        wait_for_writes(database_url, before, warm)
        # Enough calls that no CallSid comes round again, with room for the run to be faster than its warm-up.
        calls_per_thread = int(warm["rps"] * args.duration * 3 / 5 / WRK_THREADS) + BLOCK
        requests.write(prefix + "-main", calls_per_thread)
        before = current_counts(database_url)
        app = run_wrk(wrk, str(script), prefix + "-main", port, args.duration, args.connections, meter)
        # phoneapp may write to the database behind its answers: the run ends when its calls are all in.
        caught_up, after = wait_for_writes(database_url, before, app)
        app["cpu_written"] = CpuMeter.difference(app["cpu_start"], meter.snapshot())
        memory = {pid: memory_mb(pid) for pid in child_pids(gunicorn.pid)}
        report(bare, app, caught_up, before, after, memory, log_path)
        if args.route_seconds > 0:
            # No route is faster than the bare endpoint, nor, by far, than the mix: enough calls not to come round.
            rate = min(bare["rps"], 4 * max(warm["rps"], app["rps"]))

            def run_route(path_prefix, seconds):
                return run_wrk(wrk, str(script), path_prefix, port, seconds, args.connections, meter)

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
