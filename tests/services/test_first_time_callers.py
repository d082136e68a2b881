"""First-time callers and caller names, written as Twilio's signed webhooks arrive, retried and replayed."""
import pytest
import sqlalchemy as sa

from phoneapp import create_app
from phoneapp.extensions import db
from phoneapp.jobs import on_demand
from phoneapp.models import CallRecord
from phoneapp.services.webhook_events import webhook_log, write_orphaned_webhooks
from tests.support.apps import base_environ, make_app
from tests.support.jobs import run_queued_jobs
from tests.support.webhooks import CALLER, TRACKING, down_app, post_signed, setup_routing, voice_params

OTHER_CALLER = "+13125550178"


def sid(n):
    return f"CA{n:032d}"


def call_in(app, n, caller=CALLER, to=TRACKING, **extra):
    response = post_signed(app, "/twilio/voice", voice_params(call_sid=sid(n), caller=caller, to=to, **extra))
    assert response.status_code == 200, response.data


def first_time(n):
    db.session.expire_all()
    return db.session.scalars(sa.select(CallRecord.first_time_caller)
                              .where(CallRecord.twilio_call_sid == sid(n))).one()


@pytest.fixture
def routed(app):
    return setup_routing(app)


def test_a_callers_first_call_to_a_client_is_marked_and_their_next_is_not(app, routed):
    call_in(app, 1)
    call_in(app, 2)
    call_in(app, 3, caller=OTHER_CALLER)

    assert [first_time(n) for n in (1, 2, 3)] == [True, False, True]


def test_twilios_retries_change_nothing(app, routed):
    call_in(app, 1)
    call_in(app, 2)
    call_in(app, 1)
    call_in(app, 2)
    post_signed(app, "/twilio/status", {"CallSid": sid(1), "CallStatus": "completed", "CallDuration": "30",
                                        "From": CALLER, "To": TRACKING})

    assert [first_time(1), first_time(2)] == [True, False]


def test_a_call_without_a_client_counts_calls_to_its_number(app, make_number):
    unassigned = make_number()
    call_in(app, 1, to=unassigned.phone_number)
    call_in(app, 2, to=unassigned.phone_number)

    assert [first_time(1), first_time(2)] == [True, False]


def test_a_withheld_caller_is_not_said_to_be_new(app, routed):
    call_in(app, 1, caller="anonymous")
    call_in(app, 2, caller="anonymous")

    assert [first_time(1), first_time(2)] == [None, None]


def test_test_calls_are_not_counted(app, assigned, admin):
    on_demand.start_test_call(assigned, admin)
    run_queued_jobs(app)
    test_caller = app.config["TEST_CALLER_ID"]
    test_call = db.session.scalars(sa.select(CallRecord).where(CallRecord.is_test.is_(True))).one()
    assert test_call.from_number == test_caller and test_call.first_time_caller is None

    call_in(app, 1, caller=test_caller, to=assigned.phone_number)

    assert first_time(1) is True


def test_the_caller_name_twilio_sends_is_kept(app, routed):
    call_in(app, 1, CallerName="SMITH JANE")
    call_in(app, 2, caller=OTHER_CALLER, CallerName="  ACME\x00 CORP  " + "X" * 200)

    db.session.expire_all()
    names = dict(db.session.execute(sa.select(CallRecord.twilio_call_sid, CallRecord.caller_name)).all())
    assert names[sid(1)] == "SMITH JANE"
    assert len(names[sid(2)]) == 100 and "\x00" not in names[sid(2)]


def test_calls_written_from_the_webhook_log_are_judged_once_and_by_when_they_rang(tmp_path, migrated_postgres):
    """Written late (the database was down) and then written again (a crash before the log noted it was)."""
    setup_routing(make_app(tmp_path))
    down = down_app(tmp_path)
    with down.app_context():
        call_in(down, 1)
        call_in(down, 2)
        [segment] = webhook_log().segments()
        saved = segment.read_bytes()
    # The same install once its database is back.
    up = create_app({"TESTING": True, "INSTANCE_PATH": str(tmp_path / "instance")}, environ=base_environ(tmp_path))
    with down.app_context():
        webhook_log().close()
    with up.app_context():
        assert write_orphaned_webhooks().written == 2
        assert [first_time(1), first_time(2)] == [True, False]
        segment.write_bytes(saved)
        assert write_orphaned_webhooks().written == 2
        assert [first_time(1), first_time(2)] == [True, False]
