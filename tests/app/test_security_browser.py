"""A real headless Chromium enforces the Content-Security-Policy: every page works with nothing refused."""
from datetime import timedelta

import sqlalchemy as sa

from phoneapp.extensions import db
from phoneapp.models import CallRecord, PhoneAssignment, User, utcnow
from phoneapp.services.alerts import raise_alert
from tests.support.browser import CHROMIUM_ARGS, WAIT_MS, log_in, serving

# Collects what the browser refused, from before any script of the page runs.
WATCH_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(`${event.violatedDirective} blocked ${event.blockedURI || "inline"} `
                              + `at ${event.sourceFile}:${event.lineNumber}`);
});
"""


def seed_rows_for_every_page(app, number_id):
    """A call and an open alert, so the call log, dashboard and alerts show rows, not empty states."""
    with app.app_context():
        number = db.session.get(PhoneAssignment, number_id)
        db.session.add(CallRecord(twilio_call_sid="CA" + "5" * 32, phone_assignment_id=number.id,
                                  client_id=number.client_id, from_number="+12025550143",
                                  to_number=number.phone_number, forwarded_to="+14155550187", status="completed",
                                  dial_status="completed", duration=42, started_at=utcnow() - timedelta(minutes=5),
                                  recording_url="https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE1"))
        raise_alert("webhook_drift", f"number:{number.id}", "voice URL drifted", severity="error",
                    phone_assignment_id=number.id)
        db.session.commit()
        admin_id = db.session.scalar(sa.select(User.id))
        db.session.remove()
        return admin_id


def test_no_page_breaks_the_content_security_policy_and_htmx_still_polls(
        chromium, tmp_path, migrated_postgres, artifacts_dir):
    from playwright.sync_api import expect, sync_playwright

    with serving(tmp_path, assign=True) as (base, seeded):
        number_id, client_id = seeded["number_id"], seeded["client_id"]
        admin_id = seed_rows_for_every_page(seeded["app"], number_id)
        pages = ["/", "/numbers", "/clients", "/calls", "/alerts", "/health", "/users",
                 f"/numbers/{number_id}", f"/clients/{client_id}", f"/users/{admin_id}"]
        console_errors = []
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            try:
                context = browser.new_context(viewport={"width": 1280, "height": 900})
                context.set_default_timeout(WAIT_MS)
                context.add_init_script(WATCH_VIOLATIONS)
                page = context.new_page()
                page.on("console", lambda message: message.type == "error" and console_errors.append(message.text))
                page.on("pageerror", lambda error: console_errors.append(str(error)))

                violations, inline_styles = {}, {}
                login_page = page.goto(base + "/login")
                assert "script-src 'self'" in login_page.headers["content-security-policy"]
                violations["/login"] = page.evaluate("window.__cspViolations")
                log_in(page, base)
                for path in pages:
                    response = page.goto(base + path)
                    assert response.status == 200, path
                    assert response.headers["content-security-policy"], path
                    page.wait_for_load_state("load")
                    assert page.evaluate("window.htmx && htmx.version") == "2.0.11", path
                    violations[path] = page.evaluate("window.__cspViolations")
                    # htmx adds its indicator <style> unless told not to; the policy would refuse it.
                    inline_styles[path] = page.evaluate("document.querySelectorAll('style').length")
                    name = path.strip("/").replace("/", "-") or "dashboard"
                    page.screenshot(path=str(artifacts_dir / f"csp-{name}.png"), full_page=True)
                assert {path: found for path, found in violations.items() if found} == {}
                assert console_errors == []
                assert {path: count for path, count in inline_styles.items() if count} == {}

                # Polling swaps fresh HTML in: the old element is replaced, not just fetched.
                page.goto(base + "/")
                page.evaluate("document.getElementById('dashboard-live').dataset.before = 'poll'")
                with page.expect_response(lambda r: "/partials/dashboard" in r.url and r.status == 200):
                    pass
                expect(page.locator("#dashboard-live[data-before]")).to_have_count(0)
                page.goto(base + "/numbers")
                with page.expect_response(lambda r: "/partials/numbers/changes" in r.url and r.status == 200):
                    pass
                # A click through htmx: the card's edit form comes in place of the card.
                card = page.locator(f"#number-{number_id}")
                card.get_by_role("link", name="Edit").click()
                expect(card.locator("input[name=friendly_name]")).to_be_visible()
                assert page.evaluate("window.__cspViolations") == []
                assert console_errors == []

                # The policy is enforced, not merely sent: an injected inline script is refused and reported.
                page.evaluate("""() => {
                    const script = document.createElement("script");
                    script.textContent = "window.injected = true";
                    document.head.appendChild(script);
                }""")
                page.wait_for_function("window.__cspViolations.length > 0")
                assert page.evaluate("window.injected") is None
                assert page.evaluate("window.__cspViolations")[0].startswith("script-src")
            finally:
                browser.close()
