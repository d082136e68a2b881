""""Sync now" on the numbers page: queues the sync job, follows it, and shows the numbers it brings in."""
import sqlalchemy as sa
from flask import url_for

from phoneapp.extensions import db
from phoneapp.models import PhoneAssignment
from phoneapp.sandbox.account import SandboxAccount
from tests.support.jobs import job_runs, run_queued_jobs
from tests.support.pages import HX, card, csrf_headers, form_token, soup, text_of

NEW_NUMBER = "+14155550199"


def test_sync_now_queues_the_sync_and_the_number_added_to_the_account_appears(app, staff_client, sandbox_numbers,
                                                                               request_context):
    page = soup(staff_client.get(url_for("numbers.numbers")))
    sync_form = page.find("form", action=url_for("numbers.sync_now"))
    assert text_of(sync_form.find("button")) == "Sync now"
    response = staff_client.post(url_for("numbers.sync_now"),
                                 data={"csrf_token": form_token(staff_client, "numbers.numbers")})
    assert response.status_code == 303
    [run] = job_runs("sync_numbers")
    assert run.status == "queued"
    assert response.location == url_for("numbers.numbers", sync=run.id)

    SandboxAccount.open(app.config["SANDBOX_STATE_PATH"]).add_number(NEW_NUMBER, friendly_name="Spring campaign")
    panel = soup(staff_client.get(response.location)).find(id="sync-run")
    assert "Waiting for a worker" in text_of(panel)
    progress_url = panel["hx-get"]
    assert progress_url == url_for("numbers.sync_progress", run_id=run.id)

    run_queued_jobs(app)
    fragment = staff_client.get(progress_url, headers=HX)
    assert fragment.status_code == 200
    assert fragment.headers["HX-Trigger"] == "numbers-changed"
    panel = soup(fragment).find(id="sync-run")
    assert not panel.has_attr("hx-get"), "a finished sync stops polling"
    assert "Done: 5 numbers in the account: 1 added" in text_of(panel)
    added = db.session.scalars(sa.select(PhoneAssignment).where(PhoneAssignment.phone_number == NEW_NUMBER)).one()
    assert [link["href"] for link in panel.select(".sync-new-numbers a")] == [
        url_for("numbers.number_detail", number_id=added.id)]
    assert "Pending setup" in text_of(panel)
    assert card(soup(staff_client.get(url_for("numbers.numbers"))), added) is not None


def test_sync_now_from_htmx_swaps_in_the_progress_that_polls(app, staff_client, sandbox_numbers, request_context):
    response = staff_client.post(url_for("numbers.sync_now"), headers=csrf_headers(staff_client))
    assert response.status_code == 200
    [run] = job_runs("sync_numbers")
    panel = soup(response).find(id="sync-run")
    assert panel["hx-get"] == url_for("numbers.sync_progress", run_id=run.id)
    assert panel["hx-trigger"] == "every 2s"


def test_sync_now_needs_the_form_token_and_follows_only_syncs(app, staff_client, request_context):
    assert staff_client.post(url_for("numbers.sync_now")).status_code == 400
    assert job_runs("sync_numbers") == []
    assert staff_client.get(url_for("numbers.sync_progress", run_id=999)).status_code == 404
