"""The servers and the load of bench/webhooks.py: gunicorn, wrk, and the CPU and memory they cost, from /proc."""
import json
import os
import platform
import resource
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from bench.webhook_calls import WRK_THREADS, fail

ROOT = Path(__file__).resolve().parent.parent

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



def machine():
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")),
                 platform.processor() or "unknown CPU")
    meminfo = Path("/proc/meminfo").read_text() if Path("/proc/meminfo").exists() else ""
    total_kb = next((int(line.split()[1]) for line in meminfo.splitlines() if line.startswith("MemTotal:")), 0)
    return f"{model}, {os.cpu_count()} CPUs, {total_kb / 1024 / 1024:.1f} GB RAM, {platform.platform()}"


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
         "--log-level", "warning", "webhook_server:app"],
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
