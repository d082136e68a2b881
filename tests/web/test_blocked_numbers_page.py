"""The Block list page: entries shown as staff read them, adding with errors beside the fields, and Delete."""
import pytest
import sqlalchemy as sa
from flask import url_for

from phoneapp.extensions import db
from phoneapp.models import AuditEvent, BlockedNumber
from phoneapp.services.block_list import block_entries
from phoneapp.services.block_list_changes import add_blocked_number
from tests.support.pages import STAFF, form_token, soup, text_of

pytestmark = pytest.mark.usefixtures("request_context")


def add_through_page(client, **fields):
    data = {"number": "", "client_id": "", "reason": "", **fields,
            "csrf_token": form_token(client, "blocked_numbers.index")}
    return client.post(url_for("blocked_numbers.create"), data=data)


def count_entries():
    return db.session.scalar(sa.select(sa.func.count()).select_from(BlockedNumber))


def test_the_page_needs_login_and_a_stranger_changes_nothing(client, staff):
    entry = add_blocked_number("+19005550100")
    response = client.get(url_for("blocked_numbers.index"))
    assert response.status_code == 302
    assert response.headers["Location"].startswith(url_for("auth.login"))
    # Without a session there is no CSRF token either: refused before the login check, which would redirect.
    for url in (url_for("blocked_numbers.create"), url_for("blocked_numbers.delete", blocked_number_id=entry.id)):
        assert client.post(url, data={"number": "+19005550101"}).status_code in (302, 400), url
    assert [e.number for e in block_entries()] == ["+19005550100"]


def test_the_page_is_in_the_nav_and_shows_each_entry(staff_client, make_client):
    acme = make_client()
    add_blocked_number("+19005550100", reason="robocalls every morning")
    add_blocked_number("+1900*", acme.id)
    page = soup(staff_client.get(url_for("blocked_numbers.index")))
    active = page.select_one(".mainnav a.active")
    assert text_of(active) == "Block list" and active["href"] == url_for("blocked_numbers.index")
    rows = page.select("table tbody tr")
    assert len(rows) == 2
    newest, oldest = (text_of(row) for row in rows)
    assert "+1900*" in newest and "every number starting +1900" in newest and "Acme Plumbing" in newest
    assert "(900) 555-0100" in oldest and "Every client" in oldest and "robocalls every morning" in oldest
    assert STAFF[0] not in oldest and "by system" in oldest
    assert rows[1].select_one("form[data-confirm]")["data-confirm"].startswith("Unblock (900) 555-0100?")


def test_an_empty_list_says_so(staff_client):
    page = soup(staff_client.get(url_for("blocked_numbers.index")))
    assert "Nobody is blocked" in text_of(page.select_one(".empty"))


def test_adding_from_the_page(staff_client, make_client, staff):
    acme = make_client()
    response = add_through_page(staff_client, number="+1 900*", client_id=str(acme.id), reason="premium lines")
    assert response.status_code == 303
    assert [(e.number, e.client_id) for e in block_entries()] == [("+1900*", acme.id)]
    page = soup(staff_client.get(response.headers["Location"]))
    assert "Blocked numbers starting +1900 for Acme Plumbing" in text_of(page.select_one(".flash-success"))
    assert f"by {staff.email}" in text_of(page.select_one("table tbody tr"))
    event = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "block")).one()
    assert (event.actor_label, event.after["number"]) == (staff.email, "+1900*")

    assert add_through_page(staff_client, number="(900) 555-0100").status_code == 303
    assert [(e.number, e.client_id) for e in block_entries()][-1] == ("+19005550100", None)


@pytest.mark.parametrize("fields, field", [
    ({"number": "12"}, "number"),
    ({"number": "+1900**"}, "number"),
    ({"number": ""}, "number"),
    ({"number": "+19005550100", "client_id": "999"}, "client_id"),
    ({"number": "+19005550100", "client_id": "acme"}, "client_id"),
    ({"number": "+19005550100", "reason": "x" * 201}, "reason"),
])
def test_a_refusal_is_shown_beside_its_field_and_nothing_is_saved(staff_client, fields, field):
    response = add_through_page(staff_client, **fields)
    assert response.status_code == 422
    page = soup(response)
    assert page.select_one(".form-error")
    error = page.find(id=f"{field}-error")
    assert error is not None and text_of(error)
    assert error.find_parent(class_="field").select_one(f"[name={field}]")["aria-invalid"] == "true"
    # What was typed stays in the form, to correct rather than retype.
    if fields.get("number"):
        assert page.select_one("input[name=number]")["value"] == fields["number"]
    assert count_entries() == 0
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent).where(
        AuditEvent.subject_type == "BlockedNumber")) == 0


def test_a_duplicate_is_refused_with_the_reason(staff_client, make_client):
    acme = make_client()
    add_blocked_number("+19005550100", acme.id)
    response = add_through_page(staff_client, number="900-555-0100", client_id=str(acme.id))
    assert response.status_code == 422
    page = soup(response)
    assert "+19005550100 is already blocked for this client" in text_of(page.find(id="number-error"))
    assert page.select_one(f"select[name=client_id] option[value='{acme.id}']").has_attr("selected")
    assert count_entries() == 1


def test_deleting_from_the_page(staff_client, staff):
    entry_id = add_blocked_number("+19005550100").id
    token = form_token(staff_client, "blocked_numbers.index")
    response = staff_client.post(url_for("blocked_numbers.delete", blocked_number_id=entry_id),
                                 data={"csrf_token": token})
    assert response.status_code == 303
    assert block_entries() == []
    page = soup(staff_client.get(response.headers["Location"]))
    assert "Unblocked (900) 555-0100" in text_of(page.select_one(".flash-success"))
    event = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "unblock")).one()
    assert (event.actor_label, event.subject_id) == (staff.email, entry_id)
    missing = staff_client.post(url_for("blocked_numbers.delete", blocked_number_id=entry_id),
                                data={"csrf_token": token})
    assert missing.status_code == 404


def test_changes_without_the_csrf_token_are_refused(staff_client):
    entry = add_blocked_number("+19005550100")
    assert staff_client.post(url_for("blocked_numbers.create"), data={"number": "+19005550101"}).status_code == 400
    assert staff_client.post(url_for("blocked_numbers.delete", blocked_number_id=entry.id)).status_code == 400
    assert [e.number for e in block_entries()] == ["+19005550100"]
