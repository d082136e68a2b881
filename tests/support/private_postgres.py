"""A private PostgreSQL server on its own port and data directory, for outages: never the shared one.

Used by the outage tests and by the benchmarks. The server is stopped and started again on the same port and
data, like a database restarting during a busy hour.
"""
from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time

from tests.support.ports import free_port


def postgres_bin_dir():
    """Where initdb and pg_ctl live: PG_BIN, the PATH, or Debian's versioned directory (newest)."""
    if os.environ.get("PG_BIN"):
        return os.environ["PG_BIN"]
    on_path = shutil.which("pg_ctl")
    if on_path:
        # Debian links single programs onto the PATH; the directory they really live in has them all.
        return os.path.dirname(os.path.realpath(on_path))
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
                        key=lambda path: int(path.split("/")[-3]) if path.split("/")[-3].isdigit() else 0)
    return os.path.dirname(candidates[-1]) if candidates else None


class PostgresServer:
    """initdb into a temporary directory, then start/stop/kill a postmaster listening on 127.0.0.1:`port`."""

    def __init__(self, port=None, settings=None):
        self.bin_dir = postgres_bin_dir()
        if self.bin_dir is None:
            raise RuntimeError("PostgreSQL's server programs (initdb, pg_ctl) are not installed")
        self.port = port or free_port()
        self.settings = {"fsync": "off", "max_connections": "100", **(settings or {})}
        self.root = tempfile.mkdtemp(prefix="phoneapp-pg-")
        self.data_dir = os.path.join(self.root, "data")
        self.log_path = os.path.join(self.root, "server.log")
        # PostgreSQL refuses to run as root: its files then belong to the postgres system user.
        self._run_as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self._run_as:
            shutil.chown(self.root, "postgres", "postgres")
        self._run("initdb", "-D", self.data_dir, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8")

    @property
    def url(self):
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, program, *args, check=True):
        return subprocess.run([*self._run_as, os.path.join(self.bin_dir, program), *args],
                              check=check, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def start(self, timeout=30):
        options = " ".join(f"-c {name}={value}" for name, value in self.settings.items())
        options += f" -p {self.port} -c listen_addresses=127.0.0.1 -k {self.root}"
        self._run("pg_ctl", "-D", self.data_dir, "-l", self.log_path, "-o", options, "-w", "-t", str(timeout),
                  "start")
        self.wait_ready(timeout)

    def wait_ready(self, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready = subprocess.run([os.path.join(self.bin_dir, "pg_isready"), "-q", "-h", "127.0.0.1",
                                    "-p", str(self.port)], check=False)
            if ready.returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError(f"private PostgreSQL did not start on port {self.port}; see {self.log_path}")

    def stop(self, mode="fast"):
        """Stop the server: `fast` disconnects clients cleanly, `immediate` is a crash."""
        self._run("pg_ctl", "-D", self.data_dir, "-m", mode, "-w", "stop", check=False)

    def is_running(self):
        return self._run("pg_ctl", "-D", self.data_dir, "status", check=False).returncode == 0

    def destroy(self):
        if os.path.exists(os.path.join(self.data_dir, "postmaster.pid")):
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc_info):
        self.destroy()
