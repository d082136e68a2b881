"""A day in the life, in a real browser at a desktop's and a phone's width, against a live server and a real
`python worker.py`.

Log in; unassign a number; a call to it turns its card red with the reason; assigning it again takes the reason
away and the dot comes back; an answered call shows on the card, in the call log and on the dashboard, whose
"Calls today" equals the call log's rows for today; Test says "testing…" beside a dot that keeps its colour, then
its result; the worker is killed and every page says that no worker is running, and Test says so at once; the
worker starts again and the banner goes. At every step: what a user reads (labels, reasons, counts), that no page
is wider than the window, and a screenshot (in pytest's tmp_path, and in $JOURNEY_SCREENSHOTS when it is set).
"""
import os
import re
import signal
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from phoneapp.extensions import db
from phoneapp.jobs.on_demand import NO_WORKER
from phoneapp.models import WorkerHeartbeat, utcnow
from tests.support.browser import CHROMIUM_ARGS, WAIT_MS, log_in, serving
from tests.support.jobs import start_worker, stop_worker, wait_until, worker_environ

WIDTHS = [pytest.param((1400, 900), id="1400px"), pytest.param((390, 844), id="390px")]

# A worker beats every 10 s and counts as gone after 60 s of silence. The web side's threshold is shortened for
# this test (it runs in this process) so a killed worker is noticed within seconds, yet a live one that beats on
# time is never taken for dead.
SILENT_AFTER_S = 20
# The worker's own schedule, short enough that its health check closes the worker's alert soon after it is back.
WORKER_SETTINGS = {"SANDBOX_CALL_PACE": "0.4", "HEALTH_CHECK_INTERVAL": "2"}
NUMBERS_POLL_S = 3
SETTLE_MS = (NUMBERS_POLL_S + 12) * 1000

FITS_JS = "[document.documentElement.scrollWidth, window.innerWidth]"
# What sticks out past the window's right edge outside a box that scrolls or clips: named in a failure.
OFFENDERS_JS = """() => {
  const width = window.innerWidth, found = [];
  const clipped = el => { for (let p = el.parentElement; p; p = p.parentElement) {
      const o = getComputedStyle(p).overflowX; if (o === 'auto' || o === 'scroll' || o === 'hidden') return true; }
    return false; };
  for (const el of document.body.querySelectorAll('*')) {
    const box = el.getBoundingClientRect();
    if (box.width && box.right > width + 1 && !clipped(el)) {
      const classes = typeof el.className === 'string' && el.className.trim()
        ? '.' + el.className.trim().split(/\\s+/).join('.') : '';
      found.push(el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + classes + ' right=' + Math.round(box.right));
    }
  }
  return found.slice(0, 8);
}"""


@pytest.fixture
def journey_server(tmp_path, migrated_postgres):
    """The live server with the first number forwarding to Acme Plumbing; the worker is the test's to start."""
    with serving(tmp_path, assign=True) as served:
        served[1]["app"].config["WORKER_SILENT_AFTER"] = SILENT_AFTER_S
        yield served


class Worker:
    """A real `python worker.py` beside the live server, sharing its database, instance folder and sandbox."""

    def __init__(self, app, tmp_path):
        self.app, self.tmp_path, self.process, self.started = app, tmp_path, None, 0

    def start(self):
        self.started += 1
        since = utcnow()
        self.process = start_worker(worker_environ(self.app, self.tmp_path, **WORKER_SETTINGS),
                                    log_path=self.tmp_path / f"worker-{self.started}.log")
        # A killed worker's row still says it runs; only a heartbeat from this start counts.
        with self.app.app_context():
            wait_until(lambda: db.session.scalar(sa.select(sa.func.count()).select_from(WorkerHeartbeat)
                                                 .where(WorkerHeartbeat.started_at >= since)),
                       timeout=30, message="the worker's first heartbeat")
            db.session.remove()

    def kill(self):
        """Killed outright, as a crash or an OOM kill would: it cannot sign off."""
        stop_worker(self.process, sig=signal.SIGKILL)
        self.process = None

    def stop(self):
        if self.process is not None:
            stop_worker(self.process)
            self.process = None


class Journey:
    """The browser page, with the checks every step makes: the page fits its window, and a screenshot."""

    def __init__(self, page, base, width, folders):
        self.page, self.base, self.width, self.folders = page, base, width, folders
        self.shots, self.too_wide, self.problems = 0, [], []

    def goto(self, path):
        response = self.page.goto(self.base + path)
        assert response.status == 200, f"{path} answered {response.status}"

    def step(self, name):
        """Screenshot the page as it is, and note it if it is wider than the window."""
        self.shots += 1
        file_name = f"{self.width}-{self.shots:02d}-{name}.png"
        # A full-page shot draws the sticky top bar where the window is; from the top it sits where a person sees it.
        self.page.evaluate("window.scrollTo(0, 0)")
        for folder in self.folders:
            self.page.screenshot(path=str(folder / file_name), full_page=True)
        scroll_width, inner_width = self.page.evaluate(FITS_JS)
        if scroll_width > inner_width:
            self.too_wide.append(f"{file_name}: {self.page.url} is {scroll_width} px wide in a {inner_width} px "
                                 f"window: {self.page.evaluate(OFFENDERS_JS)}")

    def reload_until(self, predicate, timeout_s, message):
        """Reload until `predicate()` holds: for what only a new page shows (the worker banner)."""
        deadline = time.monotonic() + timeout_s
        while not predicate():
            if time.monotonic() > deadline:
                pytest.fail(f"timed out after {timeout_s} s waiting for {message} on {self.page.url}")
            time.sleep(1)
            self.page.reload()


def screenshot_folders(tmp_path):
    folders = [tmp_path / "screenshots"]
    if os.environ.get("JOURNEY_SCREENSHOTS"):
        folders.append(Path(os.environ["JOURNEY_SCREENSHOTS"]))
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
    return folders


def today_in(app):
    return datetime.now(ZoneInfo(app.config["APP_TIMEZONE"])).date().isoformat()


@pytest.mark.parametrize("viewport", WIDTHS)
def test_a_day_in_the_life(chromium, journey_server, tmp_path, viewport):
    from playwright.sync_api import expect, sync_playwright

    base, seeded = journey_server
    app, number_id, client_id = seeded["app"], seeded["number_id"], seeded["client_id"]
    width, height = viewport
    worker = Worker(app, tmp_path)
    worker.start()
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": width, "height": height})
                page.set_default_timeout(WAIT_MS)
                journey = Journey(page, base, width, screenshot_folders(tmp_path))
                page.on("pageerror", lambda error: journey.problems.append(str(error)))
                walk(journey, expect, worker, app, number_id, client_id)
            finally:
                browser.close()
    finally:
        worker.stop()
    assert journey.too_wide == [], "pages wider than the window:\n" + "\n".join(journey.too_wide)
    assert journey.problems == []


def walk(journey, expect, worker, app, number_id, client_id):
    page = journey.page
    card = page.locator(f"#number-{number_id}")
    dot = card.locator(".card-head .status")
    legend = page.locator("#status-counts")
    # The banner's slot is on every page and polls; the banner is what it holds when no worker runs.
    banner = page.locator("#worker-banner [role=alert]")

    # Morning: log in; the worker runs, so no page says otherwise.
    log_in(page, journey.base)
    expect(page.locator("h1")).to_have_text("Dashboard")
    expect(banner).to_have_count(0)
    journey.step("dashboard-after-login")

    # The number forwards to Acme Plumbing; it is unassigned on its card.
    journey.goto("/numbers")
    expect(dot.locator(".status-label")).to_have_text("Forwarding")
    expect(dot).to_have_class(re.compile(r"\bstatus-green\b"))
    expect(legend.locator('[data-colour="green"]')).to_have_text("1")
    expect(banner).to_have_count(0)
    journey.step("numbers-forwarding")
    card.get_by_role("link", name="Edit").click()
    card.locator("select[name=client_id]").select_option("")
    journey.step("numbers-unassigning")
    card.get_by_role("button", name="Save").click()
    expect(card.locator(".card-note")).to_have_text("Saved.")
    expect(dot.locator(".status-label")).to_have_text("Pending setup")
    expect(dot).to_have_class(re.compile(r"\bstatus-yellow\b"))
    expect(card.locator(".status-line")).to_have_text("Not assigned to a client yet")
    expect(card.locator(".facts")).to_contain_text("Not assigned")
    expect(legend.locator('[data-colour="green"]')).to_have_text("0")
    journey.step("numbers-unassigned")

    # A caller rings the unassigned number: nobody takes it, and the card turns red and says why.
    card.locator("select[name=outcome]").select_option("answered")
    card.get_by_role("button", name="Simulate a call").click()
    expect(card.locator(".card-note")).to_contain_text("nobody takes this number")
    journey.step("numbers-calling-unassigned")
    expect(dot.locator(".status-label")).to_have_text("Error", timeout=SETTLE_MS)
    expect(dot).to_have_class(re.compile(r"\bstatus-red\b"))
    expect(card).to_have_class(re.compile(r"\bstatus-border-red\b"))
    expect(card.locator(".status-line")).to_contain_text("not assigned to a client")
    expect(card.locator(".calls-today")).to_have_text("1")
    expect(card.locator(".live-call")).to_have_count(0)
    expect(legend.locator('[data-colour="red"]')).to_have_text("1", timeout=SETTLE_MS)
    journey.step("numbers-red-not-assigned")
    journey.goto("/")
    attention = page.locator("section[aria-labelledby=attention]")
    expect(attention.locator(".list-row").first).to_contain_text("(415) 555-0101")
    expect(attention.locator(".list-row").first).to_contain_text("not assigned to a client")
    expect(attention.locator(".list-row").first.locator(".status-label")).to_have_text("Error")
    expect(page.locator('[data-figure="attention"]')).to_have_text(str(attention.locator(".list-row").count()))
    expect(page.locator("section[aria-labelledby=open-alerts]")).to_contain_text("reach nobody")
    journey.step("dashboard-red-not-assigned")

    # Assigned again: the reason goes, the alert resolves itself and the dot is not red any more.
    journey.goto("/numbers")
    card.get_by_role("link", name="Edit").click()
    card.locator("select[name=client_id]").select_option(str(client_id))
    card.get_by_role("button", name="Save").click()
    expect(card.locator(".card-note")).to_have_text("Saved.")
    expect(card.locator(".status-line")).not_to_contain_text("not assigned")
    expect(card.locator(".status-line")).not_to_contain_text("reach nobody")
    expect(dot).not_to_have_class(re.compile(r"\bstatus-red\b"))
    expect(card).not_to_have_class(re.compile(r"\bstatus-border-red\b"))
    expect(card.locator(".facts")).to_contain_text("Acme Plumbing")
    journey.step("numbers-reassigned")
    # Its configuration was verified when it was assigned, so it is forwarding again.
    expect(dot.locator(".status-label")).to_have_text("Forwarding", timeout=SETTLE_MS)
    expect(dot).to_have_class(re.compile(r"\bstatus-green\b"))
    expect(card.locator(".status-line")).to_have_text("Forwarding to (415) 555-0187")
    expect(legend.locator('[data-colour="red"]')).to_have_text("0")
    expect(legend.locator('[data-colour="green"]')).to_have_text("1")
    journey.step("numbers-forwarding-again")
    journey.goto("/")
    expect(page.locator("section[aria-labelledby=open-alerts]")).not_to_contain_text("reach nobody")
    expect(page.locator("section[aria-labelledby=attention]")).not_to_contain_text("(415) 555-0101")
    expect(page.locator('[data-figure="forwarding"]')).to_have_text("1")
    journey.step("dashboard-after-reassigning")

    # An answered call: on the card, in the call log, on the dashboard.
    journey.goto("/numbers")
    card.locator("select[name=outcome]").select_option("answered")
    card.get_by_role("button", name="Simulate a call").click()
    expect(card.locator(".card-note")).to_contain_text("Calling…")
    expect(card.locator(".calls-today")).to_have_text("2", timeout=SETTLE_MS)
    expect(card.locator(".live-call")).to_have_count(0, timeout=SETTLE_MS)
    expect(dot.locator(".status-label")).to_have_text("Forwarding")
    journey.step("numbers-after-answered-call")

    journey.goto("/calls")
    rows = page.locator("#calls-table tbody tr")
    expect(rows).to_have_count(2, timeout=SETTLE_MS)
    expect(page.locator("#calls-count")).to_have_text("2 calls")
    answered = rows.first
    expect(answered).to_contain_text("Acme Plumbing")
    expect(answered).to_contain_text("(415) 555-0187")
    expect(answered.locator(".badge-outcome")).to_have_text("answered")
    expect(rows.nth(1).locator(".badge-outcome")).to_have_text("unrouted")
    journey.step("calls-after-answered-call")

    today = today_in(app)
    journey.goto(f"/calls?date_from={today}&date_to={today}")
    today_rows = rows.count()
    assert today_rows == 2
    expect(page.locator("#calls-count")).to_have_text(f"{today_rows} calls match these filters")
    journey.step("calls-today")
    journey.goto("/")
    expect(page.locator('[data-figure="calls-today"]')).to_have_text(str(today_rows))
    expect(page.locator(".stat-calls .stat-hint")).to_have_text("none in progress")
    recent = page.locator("#recent-calls .list-row")
    expect(recent).to_have_count(2)
    expect(recent.first.locator(".badge-outcome")).to_have_text("answered")
    journey.step("dashboard-after-answered-call")

    # Test: "testing…" beside a dot that keeps its colour, label and reason; then the result.
    journey.goto("/numbers")
    reason_before = card.locator(".status-line").inner_text()
    card.get_by_role("button", name="Test").click()
    expect(dot.locator(".status-testing")).to_have_text("· testing…")
    expect(dot.locator(".status-label")).to_have_text("Forwarding")
    expect(dot).to_have_class(re.compile(r"\bstatus-green\b"))
    expect(card).to_have_class(re.compile(r"\bstatus-border-green\b"))
    expect(card.locator(".status-line")).to_have_text(reason_before)
    expect(card.locator(".test-call")).to_contain_text("Testing…")
    expect(legend.locator('[data-colour="green"]')).to_have_text("1")
    journey.step("numbers-testing")
    expect(card.locator(".test-call")).to_contain_text("Test passed", timeout=SETTLE_MS * 2)
    expect(card.locator(".test-call .check-step[data-step=answered]")).to_have_count(1)
    expect(dot.locator(".status-testing")).to_have_count(0)
    expect(dot.locator(".status-label")).to_have_text("Forwarding")
    journey.step("numbers-test-passed")
    # The test call is in the log, marked; the day's real calls are as they were.
    journey.goto(f"/calls?date_from={today}&date_to={today}&tests=exclude")
    expect(rows).to_have_count(2)
    journey.goto("/calls")
    expect(page.locator("#calls-table .badge-test")).to_have_count(1)
    journey.step("calls-with-test-call")
    journey.goto("/")
    expect(page.locator('[data-figure="calls-today"]')).to_have_text("2")
    journey.step("dashboard-after-test")

    # The worker dies. The page left open says so by itself, and so does every page after it.
    journey.goto("/numbers")
    worker.kill()
    expect(banner).to_contain_text("No worker is running", timeout=(SILENT_AFTER_S + 25) * 1000)
    expect(banner).to_contain_text("python worker.py")
    journey.step("numbers-no-worker")
    pages = {"dashboard": "/", "number": f"/numbers/{number_id}", "clients": "/clients",
             "client": f"/clients/{client_id}", "calls": "/calls", "alerts": "/alerts", "health": "/health",
             "users": "/users"}
    for name, path in pages.items():
        journey.goto(path)
        expect(banner).to_contain_text("No worker is running")
        # The alert the silence opened is counted in the navigation of the same page that shows the banner.
        expect(page.locator('nav a[href="/alerts"] .nav-count')).to_have_text("1")
        journey.step(f"{name}-no-worker")
    journey.goto("/")
    expect(page.locator("section[aria-labelledby=open-alerts]")).to_contain_text("Worker is down")

    # Test says at once that nothing will pick it up; the dot still keeps its colour.
    journey.goto("/numbers")
    card.get_by_role("button", name="Test").click()
    expect(card.locator(".test-call")).to_contain_text(NO_WORKER.split(":")[0])
    expect(card.locator(".test-call")).to_contain_text("none is running")
    expect(dot.locator(".status-label")).to_have_text("Forwarding")
    expect(dot.locator(".status-testing")).to_have_text("· testing…")
    journey.step("numbers-test-without-worker")

    # The worker is back: the banner goes from every page, and the waiting test runs.
    worker.start()
    # The card still open follows the test that waited, to its end, without a reload.
    expect(card.locator(".test-call")).to_contain_text("Test passed", timeout=SETTLE_MS * 2)
    expect(dot.locator(".status-testing")).to_have_count(0)
    expect(dot.locator(".status-label")).to_have_text("Forwarding")
    # The banner on the page left open goes by itself.
    expect(banner).to_have_count(0, timeout=25 * 1000)
    journey.step("numbers-test-after-worker-back")
    journey.goto("/numbers")
    expect(banner).to_have_count(0)
    expect(dot.locator(".status-label")).to_have_text("Forwarding")
    journey.step("numbers-worker-back")
    for name, path in pages.items():
        journey.goto(path)
        expect(banner).to_have_count(0)
        journey.step(f"{name}-worker-back")
    # Its own health check closes the worker's alert.
    journey.goto("/")
    open_alerts = page.locator("section[aria-labelledby=open-alerts]")
    journey.reload_until(lambda: "Worker is down" not in open_alerts.inner_text(), 15, "the worker's alert to resolve")
    expect(open_alerts).to_contain_text("No open alerts")
    journey.step("dashboard-worker-alert-resolved")
