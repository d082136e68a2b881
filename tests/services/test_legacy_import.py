"""`numbers import`: the previous front-end's export planned row by row, applied once, and idempotent."""
import json

import pytest
import sqlalchemy as sa

from phoneapp.extensions import db
from phoneapp.models import AuditEvent, Client, PhoneAssignment
from phoneapp.services.legacy_import import ImportFileError, apply_import, plan_import, read_import_file

ACME_SID = "PN" + "a" * 32
BRIGHT_SID = "PN" + "b" * 32
SYNCED_SID = "PN" + "c" * 32

EXPORT = {
    "clients": [
        {"id": "ckacme0001", "name": "Acme Plumbing", "phone": "(415) 555-0187", "email": "office@acme.example"},
        {"id": "ckbright001", "name": "Brightside Dental", "phone": "+14155550142", "email": None},
    ],
    "phoneAssignments": [
        {"twilioSid": ACME_SID, "phoneNumber": "+14155550100", "clientId": "ckacme0001",
         "forwardToNumber": None, "isActive": True},
        {"twilioSid": BRIGHT_SID, "phoneNumber": "+1 415 555 0101", "clientId": "ckbright001",
         "forwardToNumber": "+14155550143", "isActive": False},
        {"twilioSid": SYNCED_SID, "phoneNumber": "+14155550102", "clientId": "ckacme0001"},
    ],
}


def run(export, apply=False):
    clients, numbers = read_import_file(json.dumps(export))
    return (apply_import if apply else plan_import)(clients, numbers, "US")


def by_key(plan):
    return {(row.kind, row.key): row for row in plan.rows}


def snapshot():
    """Every client's and number's row, updated_at included, and the audit trail's length."""
    db.session.expire_all()
    clients = db.session.execute(sa.select(Client.id, Client.name, Client.phone, Client.email, Client.legacy_id,
                                           Client.updated_at).order_by(Client.id)).all()
    numbers = db.session.execute(sa.select(
        PhoneAssignment.id, PhoneAssignment.twilio_sid, PhoneAssignment.client_id, PhoneAssignment.forward_to_number,
        PhoneAssignment.is_active, PhoneAssignment.config_state, PhoneAssignment.updated_at)
        .order_by(PhoneAssignment.id)).all()
    audits = db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent))
    return clients, numbers, audits


@pytest.fixture
def synced(make_number):
    """A number a sync already brought in, unassigned, under the SID the export names."""
    return make_number(phone_number="+14155550102", twilio_sid=SYNCED_SID)


def test_the_dry_run_says_what_it_would_do_and_changes_nothing(app, synced):
    before = snapshot()
    plan = run(EXPORT)
    assert snapshot() == before
    rows = by_key(plan)
    assert rows["client", "ckacme0001"].action == "create"
    assert rows["client", "ckacme0001"].reason == "new client Acme Plumbing, +14155550187"
    assert rows["number", ACME_SID].action == "create"
    assert "Twilio is checked by the next verify" in rows["number", ACME_SID].reason
    assert rows["number", SYNCED_SID].action == "change"
    assert rows["number", SYNCED_SID].reason == "assigned to Acme Plumbing"
    assert plan.counts()["number"] == {"create": 2, "change": 1, "unchanged": 0, "refuse": 0}


def test_apply_creates_the_clients_and_assigns_the_numbers_audited(app, synced):
    plan = run(EXPORT, apply=True)
    assert plan.applied
    acme = db.session.scalars(sa.select(Client).where(Client.legacy_id == "ckacme0001")).one()
    bright = db.session.scalars(sa.select(Client).where(Client.legacy_id == "ckbright001")).one()
    assert (acme.name, acme.phone, acme.email) == ("Acme Plumbing", "+14155550187", "office@acme.example")
    numbers = {n.twilio_sid: n for n in db.session.scalars(sa.select(PhoneAssignment))}
    new = numbers[ACME_SID]
    assert (new.phone_number, new.client_id, new.forward_to_number, new.is_active, new.config_state) == (
        "+14155550100", acme.id, None, True, "unverified")
    assert new.target_number == "+14155550187"
    off = numbers[BRIGHT_SID]
    assert (off.phone_number, off.client_id, off.forward_to_number, off.is_active) == (
        "+14155550101", bright.id, "+14155550143", False)
    assert numbers[SYNCED_SID].client_id == acme.id
    audit = db.session.execute(sa.select(AuditEvent.action, AuditEvent.subject_type, AuditEvent.subject_id)).all()
    assert sorted(audit) == sorted([
        ("create_client", "Client", acme.id), ("create_client", "Client", bright.id),
        ("assign", "PhoneAssignment", new.id), ("assign", "PhoneAssignment", off.id),
        ("assign", "PhoneAssignment", synced.id)])


def test_a_second_apply_changes_nothing(app, synced):
    run(EXPORT, apply=True)
    first = snapshot()
    plan = run(EXPORT, apply=True)
    assert snapshot() == first
    assert {row.action for row in plan.rows} == {"unchanged"}
    assert by_key(plan)["number", SYNCED_SID].reason == "already Acme Plumbing's number"


def test_bad_rows_are_refused_with_their_reason_and_the_good_ones_still_go_in(app):
    export = {
        "clients": [
            {"id": "ckgood", "name": "Good Co", "phone": "+14155550187"},
            {"id": "ckbadphone", "name": "Bad Phone", "phone": "555"},
            {"id": "ckgood", "name": "Good Co again", "phone": "+14155550166"},
            {"name": "No Id", "phone": "+14155550166"},
        ],
        "phoneAssignments": [
            {"twilioSid": ACME_SID, "phoneNumber": "+14155550100", "clientId": "ckgood"},
            {"twilioSid": ACME_SID, "phoneNumber": "+14155550103", "clientId": "ckgood"},
            {"twilioSid": BRIGHT_SID, "phoneNumber": "+1415", "clientId": "ckgood"},
            {"twilioSid": "PN" + "d" * 32, "phoneNumber": "+14155550104", "clientId": "cknobody"},
            {"twilioSid": "PN" + "e" * 32, "phoneNumber": "+14155550105", "clientId": "ckbadphone"},
            {"twilioSid": "PN" + "f" * 32, "clientId": "ckgood"},
            {"twilioSid": "PNnope", "phoneNumber": "+14155550106", "clientId": "ckgood"},
            {"twilioSid": "PN" + "1" * 32, "phoneNumber": "+14155550107", "clientId": "ckgood",
             "forwardToNumber": "+14155550100"},
            {"twilioSid": "PN" + "2" * 32, "phoneNumber": "+14155550108", "clientId": "ckgood", "isActive": "yes"},
            "not an assignment",
        ],
    }
    plan = run(export, apply=True)
    refused = [(row.kind, row.row, row.reason) for row in plan.rows if row.action == "refuse"]
    assert refused == [
        ("client", 2, "phone: too short"),
        ("client", 3, "id: ckgood is also client row 1, which stands"),
        ("client", 4, "id: missing, or not text of at most 64 characters"),
        ("number", 2, "twilioSid: also number row 1, which stands"),
        ("number", 3, "phoneNumber: too short"),
        ("number", 4, "clientId: no client cknobody in the file or imported before"),
        ("number", 5, "clientId: client ckbadphone (client row 2) is refused"),
        ("number", 6, "phoneNumber: a phone number is required"),
        ("number", 7, "twilioSid: missing, or not PN followed by 32 hex digits"),
        ("number", 8, "forwardToNumber: would forward to a tracking number: the call would come back in, "
                      "and Twilio bills every leg"),
        ("number", 9, "isActive: must be true or false"),
        ("number", 10, "not an object"),
    ]
    assert db.session.scalars(sa.select(Client.legacy_id)).all() == ["ckgood"]
    assert db.session.scalars(sa.select(PhoneAssignment.twilio_sid)).all() == [ACME_SID]


def test_a_bare_array_assigns_to_clients_imported_before(app):
    run(EXPORT, apply=True)
    moved = [{"twilioSid": ACME_SID, "phoneNumber": "+14155550100", "clientId": "ckbright001",
              "forwardToNumber": None, "isActive": True},
             {"twilioSid": "PN" + "9" * 32, "phoneNumber": "+14155550109", "clientId": "ckacme0001"}]
    plan = run(moved)
    assert [(row.action, row.reason) for row in plan.rows] == [
        ("change", "assigned to Brightside Dental"),
        ("create", "new number +14155550109 for Acme Plumbing, forwarding to the client's phone; "
                   "Twilio is checked by the next verify")]
    run(moved, apply=True)
    bright = db.session.scalars(sa.select(Client).where(Client.legacy_id == "ckbright001")).one()
    number = db.session.scalars(sa.select(PhoneAssignment).where(PhoneAssignment.twilio_sid == ACME_SID)).one()
    assert number.client_id == bright.id
    assert db.session.scalars(sa.select(AuditEvent.action).where(
        AuditEvent.subject_id == number.id, AuditEvent.subject_type == "PhoneAssignment")
        .order_by(AuditEvent.id)).all() == ["assign", "reassign"]


def test_a_number_phoneapp_tracks_under_another_sid_or_phone_is_refused(app, make_number):
    make_number(phone_number="+14155550100", twilio_sid="PN" + "7" * 32)
    make_number(phone_number="+14155550199", twilio_sid=BRIGHT_SID)
    rows = by_key(run(EXPORT))
    assert rows["number", ACME_SID].reason == "phoneNumber: already tracked under PN" + "7" * 32
    assert rows["number", BRIGHT_SID].reason == f"phoneNumber: phoneapp has +14155550199 under {BRIGHT_SID}"


def test_a_client_entered_by_hand_is_linked_not_doubled(app, make_client):
    hand_made = make_client(name="acme plumbing ", phone="+14155550187")
    row = by_key(run(EXPORT))["client", "ckacme0001"]
    assert row.action == "change"
    assert row.reason.startswith(f"client {hand_made.id} (acme plumbing , same phone) takes old id ckacme0001")
    run(EXPORT, apply=True)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Client).where(
        Client.phone == "+14155550187")) == 1
    db.session.refresh(hand_made)
    assert (hand_made.legacy_id, hand_made.name) == ("ckacme0001", "Acme Plumbing")


def test_a_changed_export_shows_the_change_and_keeps_an_email_it_lacks(app):
    run(EXPORT, apply=True)
    changed = {"clients": [{"id": "ckacme0001", "name": "Acme Plumbing & Heating", "phone": "+14155550187"}],
               "phoneAssignments": []}
    row = run(changed).rows[0]
    assert (row.action, row.reason) == ("change", "name: Acme Plumbing → Acme Plumbing & Heating")
    run(changed, apply=True)
    acme = db.session.scalars(sa.select(Client).where(Client.legacy_id == "ckacme0001")).one()
    assert (acme.name, acme.email) == ("Acme Plumbing & Heating", "office@acme.example")


@pytest.mark.parametrize("content, reason", [
    ("{not json", "the file is not valid JSON"),
    ('{"numbers": []}', 'expected an object with "clients" and "phoneAssignments"'),
    ('{"clients": {}, "phoneAssignments": []}', '"clients" must be an array'),
    ("42", 'expected an object with "clients" and "phoneAssignments"'),
    (b"\xff\xfe{}", "the file is not UTF-8 text"),
])
def test_a_file_that_is_no_export_is_refused_whole(content, reason):
    with pytest.raises(ImportFileError, match=reason.replace("(", r"\(")):
        read_import_file(content)
