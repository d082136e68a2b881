"""An alert says a fact that is true now: when its cause ends, it resolves itself and the dot and counts follow.

Unassign a number, let a call arrive (red: calls reach nobody), assign it again: the card, the counts and the
dashboard must stop saying so at once, and a later call routed to its client ends any such alert that is left.
"""
import pytest
import sqlalchemy as sa
from flask import url_for

from phoneapp.extensions import db
from phoneapp.models import Alert, utcnow
from phoneapp.services import assignments
from phoneapp.services.alerts import raise_alert
from phoneapp.services.number_statuses import number_statuses
from tests.support.pages import HX, card, csrf_headers, soup, text_of
from tests.support.webhooks import voice_params

pytestmark = pytest.mark.usefixtures("request_context")


def open_alerts(kind="unrouted_call"):
    db.session.expire_all()
    return db.session.scalars(sa.select(Alert).where(Alert.kind == kind, Alert.resolved_at.is_(None))).all()


@pytest.fixture
def number(make_client, make_number):
    made = make_number(phone_number="+14155550100", client=make_client())
    made.config_state, made.last_verified_at, made.webhook_url = "ok", utcnow(), "https://calls.example.test/twilio/voice"
    db.session.commit()
    return made


def test_assigning_again_ends_the_calls_reach_nobody_alert_everywhere(admin_client, signed_post, number):
    client_id = number.client_id
    assignments.update_assignment(number, {"client_id": None})
    signed_post("/twilio/voice", voice_params("CA" + "1" * 32, to=number.phone_number))
    [alert] = open_alerts()
    assert "reach nobody" in alert.message and alert.severity == "error"
    assert number_statuses([number])[number.id].colour == "red"

    response = admin_client.post(url_for("numbers.update_number", number_id=number.id),
                                 data={"client_id": str(client_id), "forward_to_number": "", "friendly_name": ""},
                                 headers=csrf_headers(admin_client))
    assert response.status_code == 200
    assert open_alerts() == []
    shown = soup(response).find("article")
    assert "status-border-green" in shown["class"], text_of(shown)
    assert "reach nobody" not in text_of(shown)

    page = soup(admin_client.get(url_for("numbers.numbers")))
    assert "reach nobody" not in text_of(card(page, number))
    assert "Error 0" in text_of(page.find(id="status-counts"))
    dashboard = soup(admin_client.get(url_for("dashboard.dashboard", fragment=True), headers=HX))
    assert "reach nobody" not in text_of(dashboard)


def test_switching_a_number_back_on_ends_its_alert(signed_post, number):
    assignments.update_assignment(number, {"is_active": False})
    signed_post("/twilio/voice", voice_params("CA" + "2" * 32, to=number.phone_number))
    assert len(open_alerts()) == 1
    assignments.update_assignment(number, {"is_active": True})
    assert open_alerts() == []


def test_a_call_routed_to_its_client_ends_an_alert_left_open(signed_post, number):
    raise_alert("unrouted_call", number.phone_number, "Calls to it reach nobody: number is not assigned to a client",
                severity="error", phone_assignment_id=number.id)
    db.session.commit()
    assert len(open_alerts()) == 1
    signed_post("/twilio/voice", voice_params("CA" + "3" * 32, to=number.phone_number))
    assert open_alerts() == []
    assert number_statuses([number])[number.id].colour == "green"


def test_the_alert_stays_while_its_cause_does(signed_post, number):
    assignments.update_assignment(number, {"client_id": None})
    for n in (4, 5):
        signed_post("/twilio/voice", voice_params("CA" + str(n) * 32, to=number.phone_number))
    assignments.update_assignment(number, {"friendly_name": "Renamed, still unassigned"})
    [alert] = open_alerts()
    assert alert.occurrences == 2
