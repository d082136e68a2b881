"""A test call in progress does not change a number's dot or the counts; the card says "testing…" beside it."""
import pytest
from flask import url_for

from phoneapp.jobs.on_demand import start_test_call
from phoneapp.models import utcnow
from phoneapp.services.number_cards import status_counts
from phoneapp.services.number_statuses import number_statuses
from tests.support.pages import HX, card, soup, text_of

pytestmark = pytest.mark.usefixtures("request_context")


@pytest.fixture
def verified(assigned):
    assigned.config_state, assigned.last_verified_at = "ok", utcnow()
    from phoneapp.extensions import db

    db.session.commit()
    return assigned


def test_a_running_test_keeps_a_green_dot_green_and_the_counts_as_they_were(admin_client, verified, admin):
    before = number_statuses([verified])[verified.id]
    counts = status_counts()
    legend_before = text_of(soup(admin_client.get(url_for("numbers.numbers"))).find(id="status-counts"))
    assert before.colour == "green"
    test = start_test_call(verified, admin)
    assert test.finished_at is None, "the test is still waiting for a worker"

    during = number_statuses([verified])[verified.id]
    assert (during.colour, during.label, during.reason) == (before.colour, before.label, before.reason)
    assert during.testing
    assert status_counts() == counts

    page = soup(admin_client.get(url_for("numbers.numbers")))
    shown = card(page, verified)
    assert "status-border-green" in shown["class"]
    assert "testing…" in text_of(shown.find(class_="status"))
    assert text_of(page.find(id="status-counts")) == legend_before
    fragment = soup(admin_client.get(url_for("numbers.number_card", number_id=verified.id), headers=HX))
    assert "testing…" in text_of(fragment.find(class_="status"))


def test_no_testing_word_when_no_test_runs(admin_client, verified):
    assert not number_statuses([verified])[verified.id].testing
    page = soup(admin_client.get(url_for("numbers.numbers")))
    assert "testing…" not in text_of(card(page, verified))
