"""Fixtures for the pages (a pytest plugin, loaded by the root conftest): a request context, the sandbox numbers."""
import pytest
import sqlalchemy as sa

from phoneapp.extensions import db
from phoneapp.models import PhoneAssignment
from phoneapp.services import assignments


@pytest.fixture
def request_context(app):
    """url_for needs a request; the test client's own requests run inside their own."""
    with app.test_request_context():
        yield


@pytest.fixture
def sandbox_numbers(app):
    """The sandbox account's four numbers, synced in (unassigned, Pending setup)."""
    assignments.sync_numbers()
    return db.session.scalars(sa.select(PhoneAssignment).order_by(PhoneAssignment.phone_number)).all()


@pytest.fixture
def assigned(sandbox_numbers, make_client):
    """The first sandbox number assigned to a client, with Twilio pointed at phoneapp (green)."""
    client = make_client()
    number, _ = assignments.upsert_assignment({"twilio_sid": sandbox_numbers[0].twilio_sid, "client_id": client.id})
    return number
