"""Routing rules through /api/clients: a good set round-trips normalised, each bad rule is a 400 naming the field
and saves nothing, and every change is in the audit trail."""
import pytest
import sqlalchemy as sa

from phoneapp.extensions import db
from phoneapp.models import AuditEvent, Client
from phoneapp.services.audit import action_label
from phoneapp.services.routing_table import LOOP_REFUSAL
from tests.support.api import assert_error

GOOD_RULES = {
    "timezone": "America/Chicago",
    "business_hours": {"mon": [["13:00", "17:00"], ["09:00", "12:00"]], "fri": [["22:00", "06:00"]]},
    "closed_dates": ["2026-12-25", "2026-01-01"],
    "after_hours": "forward",
    "after_hours_number": "(415) 555-0100",
    "failover_numbers": ["415-555-0101", "+14155550102"],
    "ring_mode": "simultaneous",
    "ring_seconds": 25,
    "whisper": True,
    "require_accept": True,
    "greeting": "  Thanks for calling Acme.  ",
}
STORED_RULES = {
    "timezone": "America/Chicago",
    "business_hours": {"mon": [["09:00", "12:00"], ["13:00", "17:00"]], "fri": [["22:00", "06:00"]]},
    "closed_dates": ["2026-01-01", "2026-12-25"],
    "after_hours": "forward",
    "after_hours_number": "+14155550100",
    "failover_numbers": ["+14155550101", "+14155550102"],
    "ring_mode": "simultaneous",
    "ring_seconds": 25,
    "whisper": True,
    "require_accept": True,
    "greeting": "Thanks for calling Acme.",
}
NO_RULES = {"timezone": None, "business_hours": {}, "closed_dates": [], "after_hours": "voicemail",
            "after_hours_number": None, "failover_numbers": [], "ring_mode": "sequential", "ring_seconds": None,
            "whisper": False, "require_accept": False, "greeting": None}


def rules_of(body):
    return {key: body[key] for key in STORED_RULES}


def test_a_client_without_rules_answers_the_defaults(api, make_client):
    client = make_client()
    assert rules_of(api.get(f"/api/clients/{client.id}").get_json()) == NO_RULES


def test_good_rules_round_trip_normalised(api, make_client):
    created = api.post("/api/clients", {"name": "Acme", "phone": "+14155550187", **GOOD_RULES})
    assert created.status_code == 201, created.get_json()
    assert rules_of(created.get_json()) == STORED_RULES
    client_id = created.get_json()["id"]
    assert rules_of(api.get(f"/api/clients/{client_id}").get_json()) == STORED_RULES

    cleared = api.patch(f"/api/clients/{client_id}", {
        "timezone": None, "business_hours": None, "closed_dates": None, "after_hours": "voicemail",
        "after_hours_number": None, "failover_numbers": None, "ring_seconds": None, "greeting": None,
        "ring_mode": "sequential", "whisper": False, "require_accept": False})
    assert cleared.status_code == 200, cleared.get_json()
    assert rules_of(cleared.get_json()) == NO_RULES


def test_a_rule_change_is_audited_apart_from_the_other_fields(api, make_client):
    client = make_client()
    assert api.patch(f"/api/clients/{client.id}", {"ring_seconds": 30, "business_hours": {"tue": [["08:00",
                                                                                                    "12:00"]]}}
                     ).status_code == 200
    event = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "change_routing_rules")).one()
    assert event.subject_type == "Client" and event.subject_id == client.id
    assert event.before == {"ring_seconds": None, "business_hours": "always open"}
    assert event.after == {"ring_seconds": 30, "business_hours": "Tue 08:00–12:00"}
    assert action_label(event.action) == "Routing rules changed"
    # The same rules again change nothing and write nothing.
    api.patch(f"/api/clients/{client.id}", {"ring_seconds": 30})
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent)
                             .where(AuditEvent.action == "change_routing_rules")) == 1


@pytest.mark.parametrize("body, field", [
    ({"business_hours": {"mon": [["9am", "17:00"]]}}, "business_hours.mon[0]"),
    ({"business_hours": {"mon": [["09:00", "17:00"], ["13:00", "25:00"]]}}, "business_hours.mon[1]"),
    ({"business_hours": {"funday": [["09:00", "17:00"]]}}, "business_hours"),
    ({"business_hours": ["09:00", "17:00"]}, "business_hours"),
    ({"timezone": "Mars/Olympus_Mons"}, "timezone"),
    ({"ring_mode": "round-robin"}, "ring_mode"),
    ({"ring_seconds": 4}, "ring_seconds"),
    ({"ring_seconds": 601}, "ring_seconds"),
    ({"ring_seconds": "20"}, "ring_seconds"),
    ({"after_hours": "hang-up"}, "after_hours"),
    ({"after_hours": "forward"}, "after_hours_number"),
    ({"after_hours": "forward", "after_hours_number": "555"}, "after_hours_number"),
    ({"failover_numbers": ["+14155550101", "not a phone"]}, "failover_numbers[1]"),
    ({"failover_numbers": ["+14155550101", "+14155550101"]}, "failover_numbers[1]"),
    ({"failover_numbers": [f"+1415555010{n}" for n in range(6)]}, "failover_numbers"),
    ({"failover_numbers": "+14155550101"}, "failover_numbers"),
    ({"greeting": "x" * 501}, "greeting"),
    ({"closed_dates": ["2026-02-30"]}, "closed_dates[0]"),
    ({"closed_dates": ["25/12/2026"]}, "closed_dates[0]"),
    ({"whisper": "yes"}, "whisper"),
    ({"require_accept": 1}, "require_accept"),
])
def test_each_bad_rule_is_refused_naming_the_field_and_nothing_is_saved(api, make_client, body, field):
    client = make_client()
    before = rules_of(api.get(f"/api/clients/{client.id}").get_json())
    error = assert_error(api.patch(f"/api/clients/{client.id}", {"name": "Renamed", **body}), 400)
    assert field in error["details"], error
    assert rules_of(api.get(f"/api/clients/{client.id}").get_json()) == before
    assert db.session.get(Client, client.id).name == "Acme Plumbing"
    created = api.post("/api/clients", {"name": "New", "phone": "+14155550142", **body})
    assert field in assert_error(created, 400)["details"]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Client)) == 1


def test_a_target_that_is_a_tracking_number_is_refused_as_a_loop(api, assigned):
    tracking = assigned.phone_number
    for body, field in [({"failover_numbers": ["+14155550142", tracking]}, "failover_numbers[1]"),
                        ({"after_hours": "forward", "after_hours_number": tracking}, "after_hours_number")]:
        error = assert_error(api.patch(f"/api/clients/{assigned.client_id}", body), 400)
        assert error["details"][field] == LOOP_REFUSAL
        assert "would forward to a tracking number" in error["details"][field]


def test_after_hours_forward_may_name_its_number_before_or_after(api, make_client):
    client = make_client()
    assert api.patch(f"/api/clients/{client.id}", {"after_hours_number": "+14155550100"}).status_code == 200
    assert api.patch(f"/api/clients/{client.id}", {"after_hours": "forward"}).status_code == 200
    # Clearing the number a forward needs is refused; clearing both is not.
    assert "after_hours_number" in assert_error(
        api.patch(f"/api/clients/{client.id}", {"after_hours_number": None}), 400)["details"]
    assert api.patch(f"/api/clients/{client.id}", {"after_hours": "voicemail",
                                                   "after_hours_number": None}).status_code == 200
