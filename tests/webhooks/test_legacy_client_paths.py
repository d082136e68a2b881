"""Numbers still on the previous front-end's per-client voice URL (`…/client-webhook/<old id>`, with or without
/api): answered by `To` first, then by the imported client, signed as requested, from the cache in an outage, and
moved to /twilio/voice by `numbers verify --fix`."""
import xml.etree.ElementTree as ET

import pytest
import sqlalchemy as sa

from phoneapp.extensions import db
from phoneapp.models import CallRecord, PhoneAssignment
from phoneapp.sandbox.account import SandboxAccount
from phoneapp.services.legacy_import import apply_import
from tests.support.apps import PUBLIC_BASE_URL, make_app
from tests.support.webhooks import down_app, post_signed, sign, voice_params

OLD_ID = "ckq3v9x2a0000lb08acme1234"
CLIENT_PHONE = "+14155550187"
UNTRACKED = "+14155550177"
PATHS = [f"/twilio/client-webhook/{OLD_ID}", f"/api/twilio/client-webhook/{OLD_ID}"]


def import_client(tracked_number=None):
    """The previous front-end's client under its cuid; with `tracked_number`, one number assigned to it."""
    numbers = [{"twilioSid": "PN" + "a" * 32, "phoneNumber": tracked_number, "clientId": OLD_ID}] \
        if tracked_number else []
    plan = apply_import([{"id": OLD_ID, "name": "Acme Plumbing", "phone": CLIENT_PHONE}], numbers, "US")
    assert {row.action for row in plan.rows} == {"create"}


def dialled(response):
    assert response.status_code == 200, response.data
    document = ET.fromstring(response.data)
    dial = document.find("Dial")
    return dial.find("Number").text if dial is not None else None


def calls():
    db.session.expire_all()
    return db.session.scalars(sa.select(CallRecord)).all()


@pytest.mark.parametrize("path", PATHS)
def test_an_unknown_to_is_routed_to_the_client_the_old_id_names(app, signed_post, path):
    import_client()
    assert dialled(signed_post(path, voice_params(to=UNTRACKED))) == CLIENT_PHONE
    [call] = calls()
    assert (call.to_number, call.forwarded_to) == (UNTRACKED, CLIENT_PHONE)


@pytest.mark.parametrize("path", PATHS)
def test_a_tracked_to_is_routed_by_its_own_assignment_first(app, signed_post, make_client, make_number, path):
    import_client()
    other = make_client(name="Brightside", phone="+14155550142")
    make_number(phone_number="+14155550111", client=other)
    assert dialled(signed_post(path, voice_params(to="+14155550111"))) == "+14155550142"


@pytest.mark.parametrize("path", PATHS)
def test_the_signature_is_checked_against_the_path_as_requested(app, client, path):
    import_client()
    params = voice_params(to=UNTRACKED)
    other_path = PATHS[1] if path == PATHS[0] else PATHS[0]
    for signature in (None, sign(app, PUBLIC_BASE_URL + other_path, params), "forged"):
        headers = {"X-Twilio-Signature": signature} if signature else {}
        assert client.post(path, data=params, headers=headers).status_code == 403
    assert calls() == []


@pytest.mark.parametrize("old_id", ["cknobody", "x" * 65, "ck.dot~x", "9223372036854775808"])
def test_an_old_id_naming_nobody_still_answers_the_caller(app, signed_post, old_id):
    import_client()
    response = signed_post(f"/api/twilio/client-webhook/{old_id}", voice_params(to=UNTRACKED))
    assert response.status_code == 200
    assert dialled(response) != CLIENT_PHONE


def test_the_old_path_is_answered_from_the_routing_cache_while_the_database_is_down(tmp_path, migrated_postgres):
    with make_app(tmp_path).app_context():
        import_client()
        db.session.remove()
    app = down_app(tmp_path)
    with app.app_context():
        for path in PATHS:
            assert dialled(post_signed(app, path, voice_params(to=UNTRACKED))) == CLIENT_PHONE


def test_a_number_on_the_old_path_is_drift_until_verify_fix_moves_it(app, runner):
    account = SandboxAccount.open(app.config["SANDBOX_STATE_PATH"])
    number = account.numbers()[0]
    assert runner.invoke(args=["numbers", "sync"]).exit_code == 0
    import_client()
    legacy_url = f"{PUBLIC_BASE_URL}/api/twilio/client-webhook/{OLD_ID}"
    account.update_number(number["sid"], voice_url=legacy_url)
    assert runner.invoke(args=["numbers", "verify", "--fix"]).exit_code == 0
    account.update_number(number["sid"], voice_url=legacy_url)

    result = runner.invoke(args=["numbers", "verify"])
    assert result.exit_code == 1 and "1 differ" in result.output
    row = db.session.scalars(sa.select(PhoneAssignment).where(PhoneAssignment.twilio_sid == number["sid"])).one()
    assert row.config_state == "drift" and legacy_url in row.config_detail

    result = runner.invoke(args=["numbers", "verify", "--fix"])
    assert result.exit_code == 0 and "1 fixed" in result.output
    assert account.get_number(number["sid"])["voice_url"] == f"{PUBLIC_BASE_URL}/twilio/voice"
