"""phoneapp's background worker: `python worker.py` (SPEC §6).

With REDIS_URL it is an RQ worker; without, it takes its jobs from the database (the embedded
default, no Redis server needed). Either way it also keeps the periodic schedule, which holds with
several workers running: each period's job is claimed by one of them.
"""
import argparse
import logging
import os
import signal
import sys
import threading

from phoneapp import ConfigError, create_app


def parse_args(argv):
    parser = argparse.ArgumentParser(description="Run phoneapp's background jobs and periodic schedule.")
    parser.add_argument("--burst", action="store_true",
                        help="run the jobs already queued, then exit (no schedule unless --schedule)")
    parser.add_argument("--schedule", action="store_true", help="keep the schedule in burst mode too")
    parser.add_argument("--no-schedule", action="store_true", help="run queued jobs only")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        app = create_app()
    except ConfigError as exc:
        sys.exit(f"phoneapp worker: {exc}")
    schedule = not args.no_schedule and (not args.burst or args.schedule)
    from phoneapp.jobs.runs import worker_name

    name = worker_name()
    if app.config["REDIS_URL"]:
        return run_rq_worker(app, name, burst=args.burst, schedule=schedule)
    return run_database_worker(app, name, burst=args.burst, schedule=schedule)


def run_database_worker(app, name, *, burst, schedule):
    from phoneapp.jobs.embedded import DatabaseQueueWorker

    worker = DatabaseQueueWorker(app, name)

    def stop(signum, frame):
        worker.stop.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    logging.getLogger("phoneapp.worker").info("worker %s: database queue, %s threads%s", name, worker.threads,
                                              ", keeping the schedule" if schedule else "")
    worker.work(burst=burst, schedule=schedule)
    return 0


def run_rq_worker(app, name, *, burst, schedule):
    import multiprocessing
    import time

    from redis.exceptions import RedisError
    from rq import Worker

    from phoneapp.extensions import db
    from phoneapp.jobs.queues import redis_connection

    log = logging.getLogger("phoneapp.worker")
    stopping = threading.Event()

    class PhoneappWorker(Worker):
        def request_stop(self, signum, frame):
            stopping.set()
            return super().request_stop(signum, frame)

    # The work horse is a fork of this process: it must open its own database connections.
    with app.app_context():
        engine = db.engine
    os.register_at_fork(after_in_child=lambda: engine.dispose(close=False))
    scheduler = None
    if schedule:
        # Spawned, not forked: the schedule process starts clean and leaves this one single-threaded.
        scheduler = multiprocessing.get_context("spawn").Process(
            target=run_schedule_process, args=(name, "rq"), name="phoneapp-scheduler", daemon=True)
        scheduler.start()
    context = app.app_context()
    context.push()
    log.info("worker %s: RQ queue %r%s", name, app.config["RQ_QUEUE"], ", keeping the schedule" if schedule else "")
    try:
        while not stopping.is_set():
            try:
                worker = PhoneappWorker([app.config["RQ_QUEUE"]], connection=redis_connection())
                worker.work(burst=burst, with_scheduler=True, logging_level="INFO")
            except RedisError as exc:
                # Redis down: the schedule process goes on (health checks and alerts need no Redis); retry.
                log.error("worker %s: Redis unreachable (%s); retrying in 5 s", name, exc)
                if burst:
                    return 1
                stopping.wait(5)
                continue
            if burst:
                break
            if not stopping.is_set():
                time.sleep(1)
    finally:
        stopping.set()
        if scheduler is not None:
            scheduler.terminate()
            scheduler.join(timeout=10)
        context.pop()
    return 0


def run_schedule_process(worker, mode):
    """Keep the schedule in a process of its own, beside an RQ worker, until told to stop or orphaned.

    Not a thread of the RQ worker: it forks a work horse per job, and a fork taken while this
    thread holds an import or connection lock would leave the horse waiting on it forever.
    Spawned, so it builds its own app here rather than inheriting the worker's.
    """
    from phoneapp.jobs.scheduler import Scheduler

    parent = os.getppid()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    signal.signal(signal.SIGINT, lambda signum, frame: stop.set())
    app = create_app()
    with app.app_context():
        Scheduler(app, worker, mode).run(stop, while_alive=lambda: os.getppid() == parent)


if __name__ == "__main__":
    sys.exit(main())
