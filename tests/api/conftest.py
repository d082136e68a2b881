"""Fixtures only the API tests use."""
import itertools
from datetime import datetime

import pytest

from phoneapp.extensions import db
from phoneapp.models import CallRecord


@pytest.fixture
def make_call(app):
    counter = itertools.count(1)

    def create(number=None, started_at=None, **fields):
        n = next(counter)
        record = CallRecord(
            twilio_call_sid=f"CA{n:032x}",
            phone_assignment_id=number.id if number is not None else None,
            client_id=fields.pop("client_id", number.client_id if number is not None else None),
            from_number=fields.pop("from_number", "+14155550100"),
            to_number=number.phone_number if number is not None else "+14155559999",
            started_at=started_at or datetime(2024, 5, 1, 12, 0, n % 60),
            **fields,
        )
        db.session.add(record)
        db.session.commit()
        return record

    return create
