"""A stopped or silent worker is noticed by the web side: the health page says when it stopped, the first page
to see the silence opens the worker's alert, every page shows a banner, and Test says at once that no worker runs."""
from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask import url_for

from phoneapp.extensions import db
from phoneapp.jobs.on_demand import NO_WORKER, start_test_call
from phoneapp.jobs.scheduler import Scheduler
from phoneapp.models import Alert, WorkerHeartbeat, utcnow
from phoneapp.services.health import check_worker, silent_worker
from tests.support.pages import soup, text_of

pytestmark = pytest.mark.usefixtures("request_context")


def heartbeat(seconds_ago, name="host:1234", mode="db"):
    db.session.add(WorkerHeartbeat(name=name, mode=mode, started_at=utcnow() - timedelta(hours=1),
                                   last_seen_at=utcnow() - timedelta(seconds=seconds_ago)))
    db.session.commit()


def worker_alerts():
    db.session.expire_all()
    return db.session.scalars(sa.select(Alert).where(Alert.subject == "component:worker",
                                                     Alert.resolved_at.is_(None))).all()


def test_a_worker_that_signs_off_is_said_to_have_stopped_not_never_to_have_reported(app):
    scheduler = Scheduler(app, "host:99", "db")
    scheduler.beat(force=True)
    assert check_worker().ok
    scheduler.sign_off()
    health = check_worker()
    assert not health.ok
    assert health.detail.startswith("the last worker stopped ") and "python worker.py" in health.detail


@pytest.mark.parametrize("seconds_ago", [120, 3600])
def test_the_first_page_to_see_a_silent_worker_opens_its_alert_once(admin_client, seconds_ago):
    heartbeat(seconds_ago)
    for _ in range(3):
        assert admin_client.get(url_for("numbers.numbers")).status_code == 200
    [alert] = worker_alerts()
    assert alert.severity == "error" and "Worker is down" in alert.message and alert.occurrences == 1


def test_every_page_says_the_worker_is_not_running(admin_client, make_client):
    heartbeat(300)
    client = make_client()
    for endpoint, values in (("dashboard.dashboard", {}), ("numbers.numbers", {}), ("clients.client_detail",
                             {"client_id": client.id}), ("calls.calls", {}), ("alerts.index", {})):
        banner = banner_text(soup(admin_client.get(url_for(endpoint, **values))))
        assert "no worker has reported for 5 min" in banner and "python worker.py" in banner, endpoint
        assert "`" not in banner


def banner_text(page):
    """What the banner says: its slot is on every page, polled, and empty while all is well."""
    return text_of(page.find(id="worker-banner"))


def test_no_banner_and_no_alert_while_a_worker_runs_or_before_any_ever_ran(admin_client):
    assert silent_worker() is None
    assert banner_text(soup(admin_client.get(url_for("numbers.numbers")))) == ""
    heartbeat(5)
    assert banner_text(soup(admin_client.get(url_for("numbers.numbers")))) == ""
    assert worker_alerts() == []


def test_the_first_page_to_see_the_silence_counts_the_alert_it_opened(admin_client):
    heartbeat(300)
    page = soup(admin_client.get(url_for("numbers.numbers")))
    assert "No worker is running" in banner_text(page)
    alerts_link = page.find("nav").find("a", href=url_for("alerts.index"))
    assert text_of(alerts_link.find(class_="nav-count")) == "1"
    # Nobody is set up to hear of it and no worker would send it: the alert says so, it does not claim "sending".
    [alert] = worker_alerts()
    row = text_of(soup(admin_client.get(url_for("alerts.index"))).find(id=f"alert-{alert.id}"))
    assert "not sent: no recipients configured" in row and "sending" not in row


def test_the_banner_comes_and_goes_with_the_worker_without_a_reload(admin_client):
    page = soup(admin_client.get(url_for("dashboard.dashboard")))
    slot = page.find(id="worker-banner")
    assert slot["hx-get"] == url_for("health.worker_banner") and "every" in slot["hx-trigger"]
    heartbeat(300)
    polled = soup(admin_client.get(slot["hx-get"], headers={"HX-Request": "true"}))
    assert "no worker has reported for 5 min" in banner_text(polled)
    heartbeat(2, name="host:5678")
    assert banner_text(soup(admin_client.get(slot["hx-get"], headers={"HX-Request": "true"}))) == ""


def test_a_test_started_with_no_worker_says_so_at_once(app, assigned, admin):
    heartbeat(600)
    test = start_test_call(assigned, admin)
    assert test.step == "queued" and test.detail == NO_WORKER
    assert test.steps[0]["detail"] == NO_WORKER


def test_a_test_started_with_a_worker_waits_for_it(app, assigned, admin):
    heartbeat(2)
    assert start_test_call(assigned, admin).detail == "Waiting for a worker"
