"""Assignment input from forms and the API: odd values are refused with a reason, never a crash.
Sync brings in every number of the account, however many pages Twilio splits it into."""
import pytest
import sqlalchemy as sa

from phoneapp.extensions import db
from phoneapp.models import PhoneAssignment
from phoneapp.services.assignments import clean_assignment_fields, sync_numbers
from phoneapp.services.errors import ValidationError
from tests.support import fake_twilio
from tests.support.apps import make_app


@pytest.mark.parametrize("client_id", ["²", "١٢", "12345678901", str(2**31), "-1", "1.0", " 1", [1], 1.5])
def test_odd_client_ids_are_refused_with_a_reason(app, client_id):
    with pytest.raises(ValidationError) as refused:
        clean_assignment_fields({"client_id": client_id})
    assert refused.value.details == {"client_id": "must be a client id or null"}


def test_a_client_id_of_a_missing_client_names_it(app):
    with pytest.raises(ValidationError) as refused:
        clean_assignment_fields({"client_id": "42"})
    assert refused.value.details == {"client_id": "no client with id 42"}


@pytest.mark.parametrize("value, expected", [("", None), (None, None), ("(415) 555-0166", "+14155550166")])
def test_forward_target_is_normalised_or_cleared(app, value, expected):
    assert clean_assignment_fields({"forward_to_number": value}) == {"forward_to_number": expected}


def test_sync_follows_every_page_of_a_large_account(tmp_path, migrated_postgres):
    with fake_twilio.running_fake_twilio(tmp_path / "twilio" / "account.json") as fake:
        fake.account.add_numbers([f"+1628555{i:04d}" for i in range(126)])
        app = make_app(tmp_path, TWILIO_ACCOUNT_SID=fake.account_sid, TWILIO_AUTH_TOKEN=fake.auth_token,
                       TWILIO_API_BASE_URL=fake.base_url)
        with app.app_context():
            try:
                assert sync_numbers(page_size=25) == {"added": 130, "updated": 0, "missing": 0, "total": 130}
                stored = dict(db.session.execute(
                    sa.select(PhoneAssignment.twilio_sid, PhoneAssignment.phone_number)).all())
                assert stored == {n["sid"]: n["phone_number"] for n in fake.account.numbers()}
                list_requests = [query for _, path, query in fake.requests
                                 if path.endswith("/IncomingPhoneNumbers.json")]
                assert len(list_requests) == 6 and all("PageSize=25" in query for query in list_requests)
                assert sum("PageToken=" in query for query in list_requests) == 5

                assert sync_numbers(page_size=25) == {"added": 0, "updated": 0, "missing": 0, "total": 130}
            finally:
                db.session.remove()
                db.engine.dispose()
