"""Helpers for the API tests: a bearer-token client, call records, and a page's CSRF token."""
import itertools
import json
from datetime import datetime

import pytest
from bs4 import BeautifulSoup

from phoneapp.extensions import db
from phoneapp.models import CallRecord
from phoneapp.services import users


class ApiClient:
    """A test client sending JSON bodies, with `Authorization: Bearer <token>` unless token is None."""

    def __init__(self, client, token=None):
        self.client = client
        self.token = token

    def open(self, method, path, body=None, headers=None, **kwargs):
        headers = dict(headers or {})
        if self.token is not None:
            headers.setdefault("Authorization", f"Bearer {self.token}")
        if body is not None:
            kwargs.setdefault("data", json.dumps(body))
            kwargs.setdefault("content_type", "application/json")
        return self.client.open(path, method=method, headers=headers, **kwargs)

    def get(self, path, **kwargs):
        return self.open("GET", path, **kwargs)

    def post(self, path, body=None, **kwargs):
        return self.open("POST", path, body, **kwargs)

    def patch(self, path, body=None, **kwargs):
        return self.open("PATCH", path, body, **kwargs)

    def delete(self, path, **kwargs):
        return self.open("DELETE", path, **kwargs)


@pytest.fixture
def api(app, staff):
    """A staff user's token client; a fresh test client so no session cookie is ever involved."""
    return ApiClient(app.test_client(), users.issue_token(staff))


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


def page_csrf_token(client):
    """The token a logged-in page hands its scripts in <meta name="csrf-token">."""
    page = ApiClient(client).get("/", follow_redirects=True)
    assert page.status_code == 200, page.status_code
    return BeautifulSoup(page.data, "html.parser").find("meta", {"name": "csrf-token"})["content"]
