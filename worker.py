"""Background worker entry point.

The background jobs (test calls, verification, health checks, alerts) are not built yet;
this says so plainly and exits non-zero rather than pretending to work.
"""
import sys

if __name__ == "__main__":
    sys.exit("phoneapp worker: no background jobs exist in this version yet; nothing to run.")
