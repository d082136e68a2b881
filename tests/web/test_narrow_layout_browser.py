"""What a reader needs stays on screen, on a desktop (1400 px) and a phone (390 px): a phone number never breaks
inside, the alerts, calls and users lists show every column's value without scrolling sideways, and filter controls
line up."""
from datetime import timedelta

import pytest
import sqlalchemy as sa

from phoneapp.extensions import db
from phoneapp.jobs.on_demand import start_test_call
from phoneapp.models import Alert, CallRecord, PhoneAssignment, User, utcnow
from phoneapp.services import assignments, clients, users
from phoneapp.services.alerts import raise_alert, resolve_alerts
from phoneapp.services.notifications import NO_RECIPIENTS
from tests.support.browser import CHROMIUM_ARGS, WAIT_MS, log_in, serving
from tests.support.pages import ADMIN

DESKTOP, PHONE = (1400, 900), (390, 844)

# Elements matching `selector` (inside `root`) that are not wholly on screen: past the window's edges, or past the
# edges of a box that clips or scrolls them. Each is named by its text, so a failure says what a reader cannot see.
HIDDEN_JS = """([root, selector]) => {
  const width = window.innerWidth, found = [];
  const els = [...document.querySelectorAll(root)].flatMap(scope => [...scope.querySelectorAll(selector)]);
  if (!els.length) return [selector + ': nothing matches'];
  for (const el of els) {
    const box = el.getBoundingClientRect();
    let hidden = !box.width || box.left < -1 || box.right > width + 1;
    for (let p = el.parentElement; p && !hidden; p = p.parentElement) {
      if (getComputedStyle(p).overflowX === 'visible') continue;
      const clip = p.getBoundingClientRect();
      hidden = box.left < clip.left - 1 || box.right > clip.right + 1 || p.scrollWidth > p.clientWidth + 1;
    }
    if (hidden) found.push(selector + ': ' + el.textContent.replace(/\\s+/g, ' ').trim().slice(0, 40)
                           + ' [' + Math.round(box.left) + '..' + Math.round(box.right) + ']');
  }
  return found;
}"""

# Elements whose text runs over more than one line.
BROKEN_JS = """(selector) => [...document.querySelectorAll(selector)]
  .filter(el => new Set([...el.getClientRects()].map(box => Math.round(box.top))).size > 1)
  .map(el => selector + ': ' + el.textContent.replace(/\\s+/g, ' ').trim())"""

# The form's controls as [id, top, height].
CONTROLS_JS = """(form) => [...document.querySelectorAll(form + ' .field > input, ' + form + ' .field > select')]
  .map(el => [el.id, Math.round(el.getBoundingClientRect().top), Math.round(el.getBoundingClientRect().height)])"""


def seed(app):
    with app.app_context():
        admin = db.session.scalars(sa.select(User).where(User.email == ADMIN[0])).one()
        numbers = db.session.scalars(sa.select(PhoneAssignment).order_by(PhoneAssignment.phone_number)).all()
        assigned, other = numbers[0], numbers[1]
        # A client's name can be one long word; the alert on its number must still fit beside it.
        long_named = clients.create_client({"name": "B" * 90 + " Heating", "phone": "+14155550142"}, "US", actor=admin)
        assignments.upsert_assignment({"twilio_sid": other.twilio_sid, "client_id": long_named.id}, actor=admin)
        now = utcnow()
        db.session.execute(sa.insert(CallRecord), [
            {"twilio_call_sid": f"CA{index:032x}", "phone_assignment_id": assigned.id, "client_id": assigned.client_id,
             "from_number": "+12025550143", "to_number": assigned.phone_number, "forwarded_to": "+14155550187",
             "routed_by": "assignment", "status": "completed", "dial_status": dial_status, "duration": 42,
             "caller_city": "SAN FRANCISCO", "caller_state": "CA", "is_test": False,
             "started_at": now - timedelta(minutes=5 * index)}
            for index, dial_status in enumerate(["completed", "no-answer", "busy"], start=1)])
        db.session.commit()
        raise_alert("webhook_drift", f"number:{other.id}", "Twilio's voice URL differs: it points at "
                    "https://old.example.net/voice", severity="error", phone_assignment_id=other.id)
        raise_alert("monitor", f"number:{assigned.id}", "Twilio reported 3 webhook errors (11200) for this number",
                    phone_assignment_id=assigned.id)
        raise_alert("sync_gone", "number:9", "Number +14155550109 is no longer in the Twilio account", severity="error")
        db.session.execute(sa.update(Alert).where(Alert.severity == "error").values(notify_detail=NO_RECIPIENTS))
        db.session.commit()
        resolve_alerts("sync_gone", "number:9")
        db.session.commit()
        users.create_user("staff@example.test", "a long enough password", role="staff", name="Sam Staff",
                          actor=admin)
        db.session.commit()
        # A test no worker picks up: its card says "testing…" beside the dot for as long as this test looks.
        start_test_call(assigned, admin)
        ids = {"number_id": assigned.id, "client_id": assigned.client_id}
        db.session.remove()
        return ids


@pytest.fixture
def live_server_with_lists(tmp_path, migrated_postgres):
    with serving(tmp_path, assign=True) as (base, seeded):
        yield base, seed(seeded["app"])


class Look:
    """One window width's look at the pages: screenshots, and what it found hidden or broken."""

    def __init__(self, page, base, width, artifacts_dir, problems):
        self.page, self.base, self.width, self.artifacts_dir, self.problems = page, base, width, artifacts_dir, problems

    def goto(self, path, name):
        self.page.goto(self.base + path)
        self.page.screenshot(path=str(self.artifacts_dir / f"lists-{self.width}-{name}.png"), full_page=True)

    def hidden(self, root, *selectors):
        for selector in selectors:
            self.problems.extend(f"{self.width} px {root} {found}"
                                 for found in self.page.evaluate(HIDDEN_JS, [root, selector]))

    def broken(self, selector):
        self.problems.extend(f"{self.width} px {found}" for found in self.page.evaluate(BROKEN_JS, selector))


def test_lists_show_every_value_and_phone_numbers_stay_whole(chromium, live_server_with_lists, artifacts_dir):
    from playwright.sync_api import sync_playwright

    base, ids = live_server_with_lists
    call_lists = (("/calls", "calls", True), (f"/numbers/{ids['number_id']}", "number", False),
                  (f"/clients/{ids['client_id']}", "client", True))
    problems = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": DESKTOP[0], "height": DESKTOP[1]})
            page.set_default_timeout(WAIT_MS)
            log_in(page, base)
            for width, height in (DESKTOP, PHONE):
                page.set_viewport_size({"width": width, "height": height})
                look = Look(page, base, width, artifacts_dir, problems)

                look.goto("/numbers", "numbers")
                assert page.locator(".status-testing").count() == 1
                look.broken(".card-title a")
                look.hidden(".cards", ".card-title a", ".status")

                look.goto("/alerts", "alerts")
                assert page.locator(".alert-row").count() == 3
                look.hidden(".alerts-table", ".badge", ".alert-message", ".alert-number a", ".alert-seen", "time",
                            ".alert-ack button", ".notice", ".alert-notice .sub")

                for path, name, tracking in call_lists:
                    look.goto(path, name)
                    assert page.locator("table.calls tbody tr").count() == 3
                    look.hidden("table.calls", ".call-time time", ".call-caller", ".badge-outcome",
                                *((".call-number a",) if tracking else ()))

                look.goto("/users", "users")
                look.hidden("#user-list + .table-wrap", "td:first-child strong", ".badge-user-role", ".badge")
                look.broken("#user-list + .table-wrap td:first-child strong")

                if width == DESKTOP[0]:
                    for path in ("/numbers", "/calls"):
                        page.goto(base + path)
                        controls = page.evaluate(CONTROLS_JS, "form.filters")
                        assert len(controls) >= 2
                        if len({(top, height) for _, top, height in controls}) != 1:
                            problems.append(f"{path}: filter controls differ in top or height: {controls}")
        finally:
            browser.close()
    assert not problems, "\n".join(problems)
