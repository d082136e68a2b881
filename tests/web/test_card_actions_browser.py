"""Switching a live number off asks first, in a real browser; a simulated call to an unassigned number says what
the caller will hear."""
import time

import pytest
import sqlalchemy as sa
from flask import url_for

from phoneapp.extensions import db
from phoneapp.models import PhoneAssignment
from tests.support.browser import CHROMIUM_ARGS, WAIT_MS, log_in, serving
from tests.support.pages import csrf_headers, soup, text_of


@pytest.fixture
def live_server_assigned(tmp_path, migrated_postgres):
    with serving(tmp_path, assign=True) as served:
        yield served


def is_active(app, number_id):
    with app.app_context():
        active = db.session.scalar(sa.select(PhoneAssignment.is_active).where(PhoneAssignment.id == number_id))
        db.session.remove()
        return active


def wait_until_active_is(app, number_id, expected, seconds=5):
    """Read the row until it says `expected` or `seconds` pass: on a loaded machine a change seen on the page is
    not always seen at once by this process's own connection; one never saved still fails here."""
    deadline = time.monotonic() + seconds
    while is_active(app, number_id) is not expected:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def test_deactivate_asks_first_and_does_nothing_when_declined(chromium, live_server_assigned, artifacts_dir):
    from playwright.sync_api import expect, sync_playwright

    base, seeded = live_server_assigned
    number_id, app = seeded["number_id"], seeded["app"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.set_default_timeout(WAIT_MS)
        log_in(page, base)
        page.goto(base + "/numbers")
        card = page.locator(f"#number-{number_id}")
        asked = []

        def decline(dialog):
            asked.append(dialog.message)
            dialog.dismiss()

        page.once("dialog", decline)
        card.get_by_role("button", name="Deactivate").click()
        page.wait_for_timeout(500)
        assert asked and "Deactivate" in asked[0] and "stop being forwarded" in asked[0]
        assert is_active(app, number_id) is True
        expect(card.get_by_role("button", name="Deactivate")).to_be_visible()

        page.once("dialog", lambda dialog: dialog.accept())
        card.get_by_role("button", name="Deactivate").click()
        expect(page.locator(f"#number-{number_id}").get_by_role("button", name="Activate")).to_be_visible()
        assert wait_until_active_is(app, number_id, False)
        page.screenshot(path=str(artifacts_dir / "deactivate-confirmed.png"), full_page=True)
        # Switching back on costs nothing and asks nothing.
        page.locator(f"#number-{number_id}").get_by_role("button", name="Activate").click()
        expect(page.locator(f"#number-{number_id}").get_by_role("button", name="Deactivate")).to_be_visible()
        browser.close()


@pytest.mark.usefixtures("request_context")
def test_a_simulated_call_to_an_unassigned_number_speaks_of_no_forwarded_phone(admin_client, sandbox_numbers):
    number = sandbox_numbers[0]
    response = admin_client.post(url_for("numbers.simulate_call", number_id=number.id), data={"outcome": "answered"},
                                 headers=csrf_headers(admin_client))
    note = text_of(soup(response).find(class_="card-note"))
    assert "nobody takes this number" in note and "forwarded phone" not in note
