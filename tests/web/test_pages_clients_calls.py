"""Client pages (create, edit, delete) and the call log (listing, pagination, filters)."""
from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask import url_for

from phoneapp.domain.call_status import OUTCOMES, call_outcome
from phoneapp.domain.phones import InvalidPhoneNumber, parse_phone
from phoneapp.extensions import db
from phoneapp.models import CallRecord, Client, PhoneAssignment, utcnow
from phoneapp.services.simulator import place_simulated_call
from tests.support.api import assert_error
from tests.support.pages import card, form_token, soup, text_of

pytestmark = pytest.mark.usefixtures("request_context")


def test_client_create_edit_delete(admin_client, assigned):
    token = form_token(admin_client)
    bad = admin_client.post(url_for("clients.create_client"),
                            data={"name": "Brightside", "phone": "555", "email": "", "notes": "", "csrf_token": token})
    assert bad.status_code == 422
    with pytest.raises(InvalidPhoneNumber) as refused:
        parse_phone("555", "US")
    assert text_of(soup(bad).find(id="phone-error")) == refused.value.reason
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Client)) == 1

    created = admin_client.post(url_for("clients.create_client"),
                                data={"name": "Brightside Dental", "phone": "(415) 555-0142",
                                      "email": "desk@brightside.example", "notes": "Closed Sundays.",
                                      "csrf_token": token})
    assert created.status_code == 303
    client = db.session.scalars(sa.select(Client).where(Client.name == "Brightside Dental")).one()
    assert client.phone == "+14155550142"
    assert created.headers["Location"] == url_for("clients.client_detail", client_id=client.id)
    detail = soup(admin_client.get(created.headers["Location"]))
    assert "Brightside Dental" in text_of(detail.find("h1"))
    assert "Client “Brightside Dental” added." in text_of(detail.find(id="flashes"))

    edited = admin_client.post(url_for("clients.update_client", client_id=client.id),
                               data={"name": "Brightside Dental Care", "phone": "+14155550142", "email": "",
                                     "notes": "", "is_active": "on", "csrf_token": token})
    assert edited.status_code == 303
    db.session.refresh(client)
    assert client.name == "Brightside Dental Care" and client.email is None

    owner = assigned.client
    owner_id = owner.id
    listing = soup(admin_client.get(url_for("clients.clients")))
    assert listing.find(id=f"client-{owner.id}") and listing.find(id=f"client-{client.id}")
    owner_page = soup(admin_client.get(url_for("clients.client_detail", client_id=owner.id)))
    assert card(owner_page, assigned) is not None

    deleted = admin_client.post(url_for("clients.delete_client", client_id=owner.id), data={"csrf_token": token})
    assert deleted.status_code == 303 and deleted.headers["Location"] == url_for("clients.clients")
    db.session.expire_all()
    assert db.session.get(Client, owner_id) is None
    assert db.session.get(PhoneAssignment, assigned.id).client_id is None


def test_client_edit_shows_phone_reason(admin_client, make_client):
    acme = make_client()
    token = form_token(admin_client, "clients.edit_client", client_id=acme.id)
    response = admin_client.post(url_for("clients.update_client", client_id=acme.id),
                                 data={"name": "Acme", "phone": "+1 999 555 0100", "email": "", "notes": "",
                                       "csrf_token": token})
    assert response.status_code == 422
    assert text_of(soup(response).find(id="phone-error"))
    db.session.expire_all()
    assert db.session.get(Client, acme.id).phone == "+14155550187"


NOTES_CAP = 5000


def test_client_notes_are_capped_at_5000_characters(admin_client, api, make_client):
    acme = make_client(notes="Gate code 1234")
    too_long = "n" * (NOTES_CAP + 1)
    refused = assert_error(api.post("/api/clients", {"name": "Brightside", "phone": "+14155550142",
                                                      "notes": too_long}), 400)
    assert refused["details"] == {"notes": "at most 5000 characters"}
    refused = assert_error(api.patch(f"/api/clients/{acme.id}", {"notes": too_long}), 400)
    assert refused["details"] == {"notes": "at most 5000 characters"}

    token = form_token(admin_client)
    for url in (url_for("clients.create_client"), url_for("clients.update_client", client_id=acme.id)):
        response = admin_client.post(url, data={"name": "Brightside", "phone": "+14155550142", "email": "",
                                                "notes": too_long, "csrf_token": token})
        assert response.status_code == 422
        page = soup(response)
        assert text_of(page.find(id="notes-error")) == "at most 5000 characters"
        notes = page.find("textarea", id="client-notes")
        assert "has-error" in notes.parent["class"] and notes["aria-describedby"] == "notes-error"
        # What was typed stays in the box, so it can be shortened rather than retyped.
        assert notes.get_text() == too_long and notes["maxlength"] == str(NOTES_CAP)
    db.session.expire_all()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Client)) == 1
    assert db.session.get(Client, acme.id).notes == "Gate code 1234"

    # Exactly 5,000 characters are kept, and spaces around notes are trimmed.
    kept = api.patch(f"/api/clients/{acme.id}", {"notes": "n" * NOTES_CAP})
    assert kept.status_code == 200 and kept.get_json()["notes"] == "n" * NOTES_CAP
    trimmed = api.patch(f"/api/clients/{acme.id}", {"notes": "  " + "n" * (NOTES_CAP - 10) + "\n"})
    assert trimmed.status_code == 200 and trimmed.get_json()["notes"] == "n" * (NOTES_CAP - 10)


def test_call_log_lists_calls_newest_first(admin_client, assigned):
    place_simulated_call(assigned.phone_number, outcome="answered", background=False, pace=0)
    place_simulated_call(assigned.phone_number, outcome="no-answer", background=False, pace=0)
    page = soup(admin_client.get(url_for("calls.calls")))
    rows = page.select("#calls-table tbody tr")
    assert len(rows) == 2
    assert "Acme Plumbing" in text_of(rows[0]) and "(415) 555-0101" in text_of(rows[0])
    assert [text_of(r.find(class_="badge-outcome")) for r in rows] == ["voicemail", "answered"]
    assert rows[0].find("time")["title"]
    answered = soup(admin_client.get(url_for("calls.calls", outcome="answered"))).select("#calls-table tbody tr")
    assert len(answered) == 1


def test_call_log_paginates(admin_client, make_number):
    number = make_number()
    start = utcnow() - timedelta(hours=2)
    for i in range(60):
        db.session.add(CallRecord(twilio_call_sid=f"CA{i:032x}", phone_assignment_id=number.id,
                                  from_number="+12025550143", to_number=number.phone_number, status="completed",
                                  dial_status="completed", started_at=start + timedelta(minutes=i)))
    db.session.commit()
    first = soup(admin_client.get(url_for("calls.calls")))
    assert len(first.select("#calls-table tbody tr")) == 50
    assert first.select_one("#calls-table tbody tr")["data-call-sid"] == f"CA{59:032x}"
    assert first.find("a", rel="next")["href"] == url_for("calls.calls", page=2)
    second = soup(admin_client.get(url_for("calls.calls", page=2)))
    assert len(second.select("#calls-table tbody tr")) == 10
    assert not second.find(id="calls-table").has_attr("hx-trigger")
    assert admin_client.get(url_for("calls.calls", page=9)).status_code == 404


def test_outcome_filter_agrees_with_the_badge(admin_client, make_number):
    number = make_number()
    combos = [("completed", "completed", "assignment", None), ("completed", "busy", "assignment", "https://x/vm"),
              ("completed", "no-answer", "assignment", None), ("completed", None, "message", None),
              ("no-answer", None, "assignment", None), ("completed", "canceled", "assignment", None),
              ("completed", None, "assignment", None), ("ringing", None, "assignment", None),
              ("in-progress", "answered", "default_number", None), ("busy", "canceled", "assignment", None)]
    for i, (status, dial, routed_by, voicemail) in enumerate(combos):
        db.session.add(CallRecord(twilio_call_sid=f"CA{i:032x}", phone_assignment_id=number.id, status=status,
                                  dial_status=dial, routed_by=routed_by, voicemail_url=voicemail))
    db.session.commit()
    for outcome in OUTCOMES:
        expected = {f"CA{i:032x}" for i, (s, d, r, v) in enumerate(combos)
                    if call_outcome(s, d, r, has_voicemail=bool(v)) == outcome}
        rows = soup(admin_client.get(url_for("calls.calls", outcome=outcome))).select("#calls-table tbody tr")
        assert {row["data-call-sid"] for row in rows} == expected, outcome


def test_client_history_keeps_calls_made_before_the_number_moved(admin_client, assigned, make_client):
    first_client = assigned.client
    place_simulated_call(assigned.phone_number, outcome="answered", background=False, pace=0)
    from phoneapp.services import assignments

    second_client = make_client(name="Brightside Dental", phone="+14155550142")
    assignments.update_assignment(assigned, {"client_id": second_client.id})
    first_page = soup(admin_client.get(url_for("clients.client_detail", client_id=first_client.id)))
    second_page = soup(admin_client.get(url_for("clients.client_detail", client_id=second_client.id)))
    assert first_page.select("#calls-table tbody tr"), "the first client's history lost its call"
    assert not second_page.select("#calls-table tbody tr")
    filtered = soup(admin_client.get(url_for("calls.calls", client=first_client.id)))
    assert len(filtered.select("#calls-table tbody tr")) == 1


def test_a_second_client_of_the_same_name_is_saved_with_a_warning(admin_client, make_client):
    make_client(name="Acme Plumbing", phone="+14155550187")
    token = form_token(admin_client)
    created = admin_client.post(url_for("clients.create_client"),
                                data={"name": "acme plumbing ", "phone": "(415) 555-0143", "email": "", "notes": "",
                                      "csrf_token": token})
    flashes = text_of(soup(admin_client.get(created.headers["Location"])).find(id="flashes"))
    assert "added" in flashes
    assert "1 other client is also named “acme plumbing”" in flashes
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Client)) == 2

    other = make_client(name="Birch Dental", phone="+14155550144")
    edit_token = form_token(admin_client, "clients.edit_client", client_id=other.id)
    renamed = admin_client.post(url_for("clients.update_client", client_id=other.id),
                                data={"name": "Acme Plumbing", "phone": "(415) 555-0144", "email": "", "notes": "",
                                      "is_active": "on", "csrf_token": edit_token})
    shown = soup(admin_client.get(renamed.headers["Location"]))
    assert "2 other clients are also named “Acme Plumbing”" in text_of(shown.find(id="flashes"))


def test_a_client_with_a_name_of_its_own_gets_no_warning(admin_client, make_client):
    make_client(name="Acme Plumbing", phone="+14155550187")
    created = admin_client.post(url_for("clients.create_client"),
                                data={"name": "Acme Roofing", "phone": "(415) 555-0143", "email": "", "notes": "",
                                      "csrf_token": form_token(admin_client)})
    assert "also named" not in text_of(soup(admin_client.get(created.headers["Location"])).find(id="flashes"))
