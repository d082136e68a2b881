"""A forward to one of our own tracking numbers comes back in as a new call, and Twilio bills every leg.

Refused when staff or the API set one; a target that became a tracking number later is skipped at call
time with an alert and a red dot.
"""
import xml.etree.ElementTree as ET

import pytest
import sqlalchemy as sa
from flask import url_for

from phoneapp.extensions import db
from phoneapp.models import Alert, AuditEvent, Client, PhoneAssignment
from phoneapp.services.number_statuses import number_statuses
from tests.support.api import assert_error
from tests.support.pages import HX, csrf_headers, form_token, soup, text_of
from tests.support.webhooks import voice_params

OTHER_TRACKING = "+14155550111"


@pytest.fixture
def numbers(make_client, make_number):
    acme = make_client(name="Acme Plumbing", phone="+14155550187")
    return make_number(phone_number="+14155550110", client=acme), make_number(phone_number=OTHER_TRACKING)


def audit_count():
    return db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent))


@pytest.mark.parametrize("target", ["+14155550110", OTHER_TRACKING, "(415) 555-0111"])
def test_the_api_refuses_a_forward_to_a_tracking_number(api, numbers, target):
    number, _ = numbers
    before = audit_count()
    response = api.patch(f"/api/phone-assignments/{number.id}", {"forward_to_number": target})
    body = assert_error(response, 400)
    assert "tracking number" in body["details"]["forward_to_number"]
    db.session.expire_all()
    assert db.session.get(PhoneAssignment, number.id).forward_to_number is None
    assert audit_count() == before


def test_the_api_refuses_a_client_whose_phone_is_a_tracking_number(api, numbers):
    body = assert_error(api.post("/api/clients", {"name": "Loop Ltd", "phone": OTHER_TRACKING}), 400)
    assert "tracking number" in body["details"]["phone"]
    acme = db.session.scalars(sa.select(Client)).one()
    body = assert_error(api.patch(f"/api/clients/{acme.id}", {"phone": OTHER_TRACKING}), 400)
    assert "tracking number" in body["details"]["phone"]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Client)) == 1


def test_the_card_form_shows_why_a_tracking_number_cannot_be_the_target(admin_client, numbers, request_context):
    number, _ = numbers
    response = admin_client.post(url_for("numbers.update_number", number_id=number.id),
                                 data={"client_id": str(number.client_id), "forward_to_number": OTHER_TRACKING,
                                       "friendly_name": ""}, headers=csrf_headers(admin_client))
    assert response.status_code == 422
    field = soup(response).find(id="forward_to_number-error")
    assert "tracking number" in text_of(field)
    db.session.expire_all()
    assert db.session.get(PhoneAssignment, number.id).forward_to_number is None


def test_the_client_form_shows_why_a_tracking_number_cannot_be_its_phone(admin_client, numbers, request_context):
    response = admin_client.post(url_for("clients.create_client"),
                                 data={"name": "Loop Ltd", "phone": OTHER_TRACKING, "email": "", "notes": "",
                                       "csrf_token": form_token(admin_client)})
    assert response.status_code == 422
    assert "tracking number" in text_of(soup(response).find(id="phone-error"))


def test_a_target_that_became_a_tracking_number_is_skipped_with_an_alert(app, signed_post, make_client, make_number,
                                                                         admin_client, request_context):
    # The client's phone was fine when saved; the same number was bought and tracked later.
    looping = make_client(name="Loop Ltd", phone="+14155550122")
    number = make_number(phone_number="+14155550121", client=looping)
    make_number(phone_number="+14155550122")
    response = signed_post("/twilio/voice", voice_params(to=number.phone_number))
    document = ET.fromstring(response.data)
    assert document.find("Dial") is None and document.find("Say") is not None
    alert = db.session.scalars(sa.select(Alert).where(Alert.resolved_at.is_(None))).one()
    assert alert.phone_assignment_id == number.id and alert.severity == "error"
    assert "tracking number" in alert.message
    status = number_statuses([number])[number.id]
    assert (status.colour, "tracking number" in status.reason) == ("red", True)
    card = soup(admin_client.get(url_for("numbers.number_card", number_id=number.id), headers=HX))
    assert "tracking number" in text_of(card.find(class_="status-reason") or card)


def test_a_per_client_voice_url_to_a_tracking_number_is_skipped(signed_post, make_client, make_number):
    looping = make_client(name="Loop Ltd", phone="+14155550122")
    make_number(phone_number="+14155550122")
    response = signed_post(f"/twilio/client-webhook/{looping.id}", voice_params(to="+14155550199"))
    assert ET.fromstring(response.data).find("Dial") is None


def test_a_default_number_that_is_a_tracking_number_is_no_way_out(app, signed_post, make_number):
    make_number(phone_number=OTHER_TRACKING)
    unassigned = make_number(phone_number="+14155550130")
    app.config["DEFAULT_FORWARD_NUMBER"] = OTHER_TRACKING
    document = ET.fromstring(signed_post("/twilio/voice", voice_params(to=unassigned.phone_number)).data)
    assert document.find("Dial") is None and document.find("Say") is not None
    alert = db.session.scalars(sa.select(Alert).where(Alert.resolved_at.is_(None))).one()
    assert "default number is a tracking number" in alert.message and alert.severity == "error"


def test_a_default_number_elsewhere_still_takes_unassigned_calls(app, signed_post, make_number):
    unassigned = make_number(phone_number="+14155550130")
    app.config["DEFAULT_FORWARD_NUMBER"] = "+14155550199"
    document = ET.fromstring(signed_post("/twilio/voice", voice_params(to=unassigned.phone_number)).data)
    assert document.find("Dial/Number").text == "+14155550199"


def test_a_failover_that_became_a_tracking_number_is_skipped_with_an_alert_until_the_rules_change(
        signed_post, numbers):
    number, other = numbers
    client = number.client
    # Saved while it was an outside phone; the account bought it as a tracking number later.
    client.failover_numbers = [OTHER_TRACKING, "+14155550188"]
    db.session.commit()
    document = ET.fromstring(signed_post("/twilio/voice", voice_params(to=number.phone_number)).data)
    assert document.find("Dial/Number").text == "+14155550187"
    alert = db.session.scalars(sa.select(Alert).where(Alert.kind == "looping_target")).one()
    assert (alert.phone_assignment_id, alert.resolved_at, alert.severity) == (number.id, None, "warning")
    assert OTHER_TRACKING in alert.message and "tracking number" in alert.message
    action = document.find("Dial").get("action").split("/twilio", 1)[1]
    following = ET.fromstring(signed_post("/twilio" + action, voice_params(
        to=number.phone_number, CallStatus="in-progress", DialCallStatus="no-answer")).data)
    assert following.find("Dial/Number").text == "+14155550188", "the looping failover is skipped"
    # The number still forwards: the dot is not red for a failover it skips.
    assert number_statuses([number])[number.id].colour != "red"

    client.failover_numbers = ["+14155550188"]
    db.session.commit()
    signed_post("/twilio/voice", voice_params(call_sid="CA" + "2" * 32, to=number.phone_number))
    db.session.expire_all()
    assert db.session.get(Alert, alert.id).resolved_at is not None
