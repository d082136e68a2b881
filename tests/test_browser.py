"""A real headless Chromium against a live server: log in, assign a number, simulate a call, find it."""
import threading
import time

import pytest
import sqlalchemy as sa
from conftest import ADMIN, chromium_path, make_app, note_not_run
from werkzeug.serving import make_server

from phoneapp.extensions import db
from phoneapp.models import PhoneAssignment
from phoneapp.services import assignments, clients, users

CHROMIUM_ARGS = ["--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
WAIT_MS = 20_000
# Chromium logs every 4xx response; the refused form in this test is meant to answer 422.
EXPECTED_REFUSAL = "the server responded with a status of 422"


@pytest.fixture
def chromium():
    path = chromium_path()
    if not path:
        note_not_run("browser tests", "chromium not found")
        pytest.skip("chromium not found")
    return path


@pytest.fixture
def live_server(tmp_path, migrated_postgres):
    """The app on 127.0.0.1 over plain HTTP, so its cookies must not be marked Secure here."""
    app = make_app(tmp_path, {"SANDBOX_CALL_PACE": 0.2, "SESSION_COOKIE_SECURE": False,
                              "REMEMBER_COOKIE_SECURE": False})
    with app.app_context():
        users.create_user(ADMIN[0], ADMIN[1], role="admin", name="Ada Admin")
        acme = clients.create_client({"name": "Acme Plumbing", "phone": "+14155550187"}, "US")
        assignments.sync_numbers()
        first = db.session.scalars(sa.select(PhoneAssignment).order_by(PhoneAssignment.phone_number)).first()
        seeded = {"client_id": acme.id, "number_id": first.id}
        db.session.remove()
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", seeded
    finally:
        server.shutdown()
        thread.join(timeout=5)
        with app.app_context():
            db.engine.dispose()


def test_assign_a_number_and_find_a_simulated_call(chromium, live_server, artifacts_dir):
    from playwright.sync_api import expect, sync_playwright

    base, seeded = live_server
    number_id = seeded["number_id"]
    problems = []

    def shot(page, name):
        page.screenshot(path=str(artifacts_dir / f"browser-{name}.png"), full_page=True)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(WAIT_MS)
            page.on("console", lambda message: message.type == "error" and problems.append(message.text))
            page.on("pageerror", lambda error: problems.append(str(error)))

            page.goto(base + "/login")
            expect(page.locator(".sandbox-banner")).to_contain_text("Sandbox mode")
            shot(page, "01-login")
            page.fill("input[name=email]", ADMIN[0])
            page.fill("input[name=password]", ADMIN[1])
            page.click("button[type=submit]")
            expect(page.locator("h1")).to_have_text("Dashboard")
            assert page.evaluate("window.htmx && htmx.version") == "2.0.11"
            shot(page, "02-dashboard")

            page.get_by_role("link", name="Phone numbers").click()
            expect(page.locator("article.number-card")).to_have_count(4)
            card = page.locator(f"#number-{number_id}")
            expect(card.locator(".status-label")).to_have_text("Pending setup")
            expect(card.locator(".status-line")).to_have_text("Not assigned to a client yet")
            shot(page, "03-numbers")

            card.get_by_role("link", name="Edit").click()
            card.locator("select[name=client_id]").select_option(str(seeded["client_id"]))
            card.locator("input[name=friendly_name]").fill("Spring campaign")
            card.locator("input[name=forward_to_number]").fill("12")
            card.get_by_role("button", name="Save").click()
            # A refused form comes back as 422, which htmx is configured to swap so the reason shows.
            expect(card.locator(".field-error")).to_be_visible()
            shot(page, "04-edit-form-refused")
            card.locator("input[name=forward_to_number]").fill("")
            card.get_by_role("button", name="Save").click()
            expect(card.locator(".status-label")).to_have_text("Forwarding")
            expect(card).to_contain_text("Acme Plumbing")
            expect(card.locator(".card-note")).to_have_text("Saved.")
            expect(page.locator('#status-counts [data-colour="green"]')).to_have_text("1")
            shot(page, "05-assigned")

            card.locator("select[name=outcome]").select_option("answered")
            card.get_by_role("button", name="Simulate a call").click()
            expect(card.locator(".card-note")).to_contain_text("Calling…")
            shot(page, "06-calling")
            # The card polls itself while the call is live and stops once it has ended.
            expect(card.locator(".calls-today")).to_have_text("1")
            expect(card.locator(".live-call")).to_have_count(0)
            shot(page, "07-after-call")

            page.get_by_role("link", name="Call log").click()
            rows = page.locator("#calls-table tbody tr")
            deadline = time.monotonic() + WAIT_MS / 1000
            while rows.count() == 0 and time.monotonic() < deadline:
                time.sleep(0.5)
                page.reload()
            expect(rows).to_have_count(1)
            expect(rows.first).to_contain_text("(415) 555-0101")
            expect(rows.first).to_contain_text("Acme Plumbing")
            expect(rows.first.locator(".badge-outcome")).to_have_text("answered")
            shot(page, "08-call-log")

            page.goto(f"{base}/numbers/{number_id}")
            expect(page.locator(".timeline")).to_contain_text("assign")
            shot(page, "09-number-detail")

            page.get_by_role("link", name="Acme Plumbing").first.click()
            expect(page.locator(f"#number-{number_id}")).to_be_visible()
            expect(page.locator("#calls-table tbody tr")).to_have_count(1)
            shot(page, "10-client-detail")
            page.get_by_role("link", name="Dashboard").click()
            expect(page.locator("#recent-calls")).to_contain_text("(415) 555-0101")
            shot(page, "11-dashboard-after-call")

            page.set_viewport_size({"width": 390, "height": 844})
            page.goto(base + "/numbers")
            shot(page, "12-numbers-phone")
        finally:
            browser.close()
    assert [problem for problem in problems if EXPECTED_REFUSAL not in problem] == []
