"""Long data wraps: no page is wider than the window, on a desktop (1400 px) or a phone (390 px).

A client with a 200-character name (much of it one unbroken word), 5,000 characters of notes and a long e-mail;
a number with a long friendly name and an open error alert whose reason is long; calls, a failed job, a user
with a long e-mail. Tables may scroll inside their own `.table-wrap`; the page itself must not.
"""
from datetime import timedelta

import pytest
import sqlalchemy as sa

from phoneapp.extensions import db
from phoneapp.models import CallRecord, JobRun, PhoneAssignment, User, utcnow
from phoneapp.services import assignments, clients, users
from phoneapp.services.alerts import raise_alert
from phoneapp.services.block_list_changes import add_blocked_number
from tests.support.browser import CHROMIUM_ARGS, WAIT_MS, log_in, serving
from tests.support.pages import ADMIN

WIDTHS = ((1400, 900), (390, 844))

LONG_NAME = ("A" * 120 + " Plumbing, Heating and Air Conditioning Services of the Greater Metropolitan Area")[:200]
LONG_EMAIL = "accounts.payable." + "x" * 70 + "@" + "billing-department-" + "y" * 60 + ".example.com"
LONG_URL = "https://portal.example.com/customers/" + "c" * 180 + "/instructions?ref=" + "r" * 80
LONG_NOTES = ("Gate code and instructions: " + "N" * 1500 + "\n" + LONG_URL + "\n"
              + "Call the office manager before sending anyone out; the side door sticks. " * 60)[:5000]
LONG_FRIENDLY_NAME = "Spring-campaign-" + "F" * 150 + " billboard on the interstate"
LONG_REASON = ("Twilio's Voice URL differs: expected https://phoneapp.example.com/twilio/voice but found "
               + "https://old-agency.example.net/webhooks/" + "w" * 220 + " (the number answers elsewhere)")
LONG_USER_EMAIL = "operations.supervisor." + "u" * 80 + "@" + "z" * 60 + ".example.org"
LONG_ERROR = "RuntimeError: the carrier answered " + "e" * 400 + " and gave up"
assert (len(LONG_NAME), len(LONG_NOTES)) == (200, 5000)  # the longest a client's name and notes may be

# Elements that stick out past the window's right edge and are not inside a box that scrolls or clips:
# what widens the page, named so a failure says where to look.
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

# On the dashboard, a row's text (number, client, reason) and its side (dot and label, time) must not sit on top of
# each other: neither box may overlap the other, nor may the text spill out of its own box under the side.
OVERLAPS_JS = """() => {
  const found = [];
  for (const row of document.querySelectorAll('.list-row')) {
    const main = row.querySelector('.list-main'), side = row.querySelector('.list-side');
    if (!main || !side) continue;
    const a = main.getBoundingClientRect(), b = side.getBoundingClientRect();
    const apart = (a.right <= b.left + 1 || b.right <= a.left + 1 || a.bottom <= b.top + 1 || b.bottom <= a.top + 1)
      && main.scrollWidth <= main.clientWidth + 1 && side.scrollWidth <= side.clientWidth + 1;
    const panel = row.closest('section').getAttribute('aria-labelledby');
    if (!apart) found.push(panel + ': ' + main.textContent.replace(/\\s+/g, ' ').trim().slice(0, 40));
  }
  return found;
}"""


def seed_long_data(app):
    """The long client, number, alert, calls, failed job and user; returns the ids the pages need."""
    with app.app_context():
        admin = db.session.scalars(sa.select(User).where(User.email == ADMIN[0])).one()
        client = clients.create_client({"name": LONG_NAME, "phone": "+14155550188", "email": LONG_EMAIL,
                                        "notes": LONG_NOTES}, "US", actor=admin)
        numbers = db.session.scalars(sa.select(PhoneAssignment).order_by(PhoneAssignment.phone_number)).all()
        named, failing = numbers[0], numbers[1]
        assignments.upsert_assignment({"twilio_sid": named.twilio_sid, "client_id": client.id,
                                       "friendly_name": LONG_FRIENDLY_NAME}, actor=admin)
        assignments.upsert_assignment({"twilio_sid": failing.twilio_sid, "client_id": client.id,
                                       "friendly_name": LONG_FRIENDLY_NAME}, actor=admin)
        raise_alert("webhook_drift", f"number:{failing.id}", LONG_REASON, severity="error",
                    phone_assignment_id=failing.id)
        now = utcnow()
        calls = [{"twilio_call_sid": f"CA{index:032x}", "phone_assignment_id": number.id, "client_id": client.id,
                  "from_number": "+12025550143", "to_number": number.phone_number, "forwarded_to": "+14155550188",
                  "routed_by": "assignment", "status": "completed", "dial_status": dial_status, "duration": 42,
                  "caller_city": "LLANFAIRPWLLGWYNGYLLGOGERYCHWYRNDROBWLLLLANTYSILIOGOGOGOCH", "caller_state": "WALES",
                  "is_test": False, "started_at": now - timedelta(minutes=5 * index)}
                 for index, (number, dial_status) in enumerate(
                     [(named, "completed"), (failing, "no-answer"), (named, "busy"), (failing, "completed")], start=1)]
        db.session.execute(sa.insert(CallRecord), calls)
        db.session.add(JobRun(name="verify_numbers", status="failed", attempts=3, max_attempts=3, error=LONG_ERROR,
                              enqueued_at=now, started_at=now, finished_at=now))
        db.session.commit()
        add_blocked_number("+1900*", client.id, reason=LONG_REASON[:200], actor=admin)
        add_blocked_number("+12025550143", reason="Calls every hour asking for " + "w" * 150, actor=admin)
        person = users.create_user(LONG_USER_EMAIL, "a long enough password", role="staff",
                                   name="Maximiliana " + "Q" * 100, actor=admin)
        db.session.commit()
        ids = {"client_id": client.id, "named_id": named.id, "failing_id": failing.id, "user_id": person.id}
        db.session.remove()
        return ids


@pytest.fixture
def live_server_long_data(tmp_path, migrated_postgres):
    with serving(tmp_path) as (base, seeded):
        yield base, seed_long_data(seeded["app"])


def test_no_page_is_wider_than_the_window_with_long_data(chromium, live_server_long_data, artifacts_dir):
    from playwright.sync_api import sync_playwright

    base, ids = live_server_long_data
    pages = {
        "dashboard": "/",
        "numbers": "/numbers",
        "number": f"/numbers/{ids['failing_id']}",
        "number-named": f"/numbers/{ids['named_id']}",
        "number-edit": f"/numbers/{ids['named_id']}/edit",
        "clients": "/clients",
        "client": f"/clients/{ids['client_id']}",
        "client-edit": f"/clients/{ids['client_id']}/edit",
        "calls": "/calls",
        "alerts": "/alerts",
        "health": "/health",
        "users": "/users",
        "user": f"/users/{ids['user_id']}",
        "blocked-numbers": "/blocked-numbers",
    }
    too_wide, overlaps, problems = [], [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": WIDTHS[0][0], "height": WIDTHS[0][1]})
            page.set_default_timeout(WAIT_MS)
            page.on("pageerror", lambda error: problems.append(str(error)))
            log_in(page, base)
            for width, height in WIDTHS:
                page.set_viewport_size({"width": width, "height": height})
                for name, path in pages.items():
                    response = page.goto(base + path)
                    assert response.status == 200, f"{path} answered {response.status}"
                    page.screenshot(path=str(artifacts_dir / f"layout-{width}-{name}.png"), full_page=True)
                    scroll_width, inner_width = page.evaluate(
                        "[document.documentElement.scrollWidth, window.innerWidth]")
                    if scroll_width > inner_width:
                        too_wide.append(f"{path} at {width} px is {scroll_width} px wide: "
                                        f"{page.evaluate(OFFENDERS_JS)}")
                    if name == "dashboard":
                        overlaps += [f"at {width} px, {row}" for row in page.evaluate(OVERLAPS_JS)]
            # The long data really is on the pages measured.
            page.goto(base + "/")
            assert page.locator("#attention").locator("xpath=ancestor::section").get_by_text(
                LONG_REASON[:40]).count() == 1
            page.goto(base + f"/clients/{ids['client_id']}")
            assert page.locator(".notes").inner_text().startswith("Gate code")
        finally:
            browser.close()
    assert (too_wide, overlaps) == ([], []), "\n".join(too_wide + ["overlapping on the dashboard:"] + overlaps)
    assert problems == []
