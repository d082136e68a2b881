"""Helpers and fixtures shared by the page tests."""
import pytest
import sqlalchemy as sa
from bs4 import BeautifulSoup
from flask import url_for

from phoneapp.extensions import db
from phoneapp.models import PhoneAssignment
from phoneapp.services import assignments

HX = {"HX-Request": "true"}


def soup(response):
    return BeautifulSoup(response.data, "html.parser")


def text_of(node):
    return " ".join(node.get_text(" ", strip=True).split())


def csrf_headers(client):
    """htmx's headers with the page's CSRF token, the way app.js sends them."""
    token = soup(client.get(url_for("numbers.numbers"))).find("meta", {"name": "csrf-token"})["content"]
    return {**HX, "X-CSRFToken": token}


def form_token(client, endpoint="clients.clients", **values):
    return soup(client.get(url_for(endpoint, **values))).find("input", {"name": "csrf_token"})["value"]


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


def card(page, number):
    return page.find(id=f"number-{number.id}")
