"""Driving the pages in headless Chromium: where Chromium is, how it is started, and a live server to drive."""
import shutil
import threading
from contextlib import contextmanager

import sqlalchemy as sa
from werkzeug.serving import make_server

from phoneapp.extensions import db
from phoneapp.jobs.embedded import DatabaseQueueWorker
from phoneapp.models import PhoneAssignment
from phoneapp.services import assignments, clients, users
from tests.support.apps import make_app
from tests.support.pages import ADMIN

CHROMIUM_ARGS = ["--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
WAIT_MS = 20_000


def chromium_path():
    return shutil.which("chromium") or shutil.which("chromium-browser")


@contextmanager
def serving(tmp_path, assign=False, worker=False):
    """The app on 127.0.0.1 over plain HTTP, so its cookies must not be marked Secure here."""
    app = make_app(tmp_path, {"SANDBOX_CALL_PACE": 0.2, "SESSION_COOKIE_SECURE": False,
                              "REMEMBER_COOKIE_SECURE": False})
    with app.app_context():
        users.create_user(ADMIN[0], ADMIN[1], role="admin", name="Ada Admin")
        acme = clients.create_client({"name": "Acme Plumbing", "phone": "+14155550187"}, "US")
        assignments.sync_numbers()
        first = db.session.scalars(sa.select(PhoneAssignment).order_by(PhoneAssignment.phone_number)).first()
        if assign:
            assignments.upsert_assignment({"twilio_sid": first.twilio_sid, "client_id": acme.id})
        seeded = {"client_id": acme.id, "number_id": first.id, "app": app}
        db.session.remove()
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    # The same worker `python worker.py` runs without Redis, on a thread of this process.
    jobs = DatabaseQueueWorker(app, "browser-test-worker") if worker else None
    jobs_thread = threading.Thread(target=jobs.work, kwargs={"schedule": False}, daemon=True) if jobs else None
    if jobs_thread:
        jobs_thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", seeded
    finally:
        if jobs_thread:
            jobs.stop.set()
            jobs_thread.join(timeout=10)
        server.shutdown()
        thread.join(timeout=5)
        with app.app_context():
            db.engine.dispose()


def log_in(page, base):
    page.goto(base + "/login")
    page.fill("input[name=email]", ADMIN[0])
    page.fill("input[name=password]", ADMIN[1])
    page.click("button[type=submit]")
    page.wait_for_url(base + "/")
