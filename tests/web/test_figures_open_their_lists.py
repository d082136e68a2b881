"""One outcome vocabulary (SPEC §3a Outcomes): every figure links to a list showing exactly the calls it counted."""
import csv
import io
import re

import pytest
import sqlalchemy as sa
from flask import url_for

from phoneapp.extensions import db
from phoneapp.models import CallRecord
from phoneapp.services import assignments
from tests.support.pages import soup, text_of

pytestmark = pytest.mark.usefixtures("request_context")

RECORDING_URL = "https://api.twilio.com/2010-04-01/Accounts/AC00000000000000000000000000000000/Recordings/RE1"


def params(number, sid, **extra):
    return {"CallSid": sid, "AccountSid": "AC" + "0" * 32, "From": "+14155550100", "To": number.phone_number,
            "CallStatus": "ringing", **extra}


def call(signed_post, number, sid, dial_status=None, voicemail=False):
    """A call through the real webhooks: routed, its <Dial> result, a voicemail left or not, then its end."""
    assert signed_post("/twilio/voice", params(number, sid)).status_code == 200
    if dial_status:
        signed_post("/twilio/dial-status", params(number, sid, CallStatus="in-progress", DialCallStatus=dial_status))
    if voicemail:
        signed_post("/twilio/recording?kind=voicemail", params(
            number, sid, CallStatus="completed", RecordingUrl=RECORDING_URL, RecordingStatus="completed",
            RecordingSid="RE" + sid[2:], RecordingDuration="12"))
    signed_post("/twilio/status", params(number, sid, CallStatus="completed", CallDuration="30"))


@pytest.fixture
def day_of_calls(signed_post, sandbox_numbers, make_client):
    """Today's calls of every kind: answered, voicemail, missed (busy, unanswered, a hang-up), unrouted, a test."""
    client = make_client()
    number, _ = assignments.upsert_assignment({"twilio_sid": sandbox_numbers[0].twilio_sid, "client_id": client.id})
    unassigned = sandbox_numbers[1]
    call(signed_post, number, "CA" + "1" * 32, "completed")
    call(signed_post, number, "CA" + "2" * 32, "no-answer", voicemail=True)
    call(signed_post, number, "CA" + "3" * 32, "busy", voicemail=True)
    call(signed_post, number, "CA" + "4" * 32, "no-answer")
    call(signed_post, number, "CA" + "5" * 32, "canceled")
    call(signed_post, unassigned, "CA" + "6" * 32)
    call(signed_post, number, "CA" + "7" * 32, "busy")
    db.session.execute(sa.update(CallRecord).where(CallRecord.twilio_call_sid == "CA" + "7" * 32)
                       .values(is_test=True))
    db.session.commit()
    return client, number


def log_rows(admin_client, href):
    """(the count the call log states, its rows' outcome badges) for a link's page."""
    page = soup(admin_client.get(href))
    stated = int(re.match(r"[\d,]+", text_of(page.find(id="calls-count"))).group().replace(",", ""))
    return stated, [text_of(row.find(class_="badge-outcome")) for row in page.select("#calls-table tbody tr")]


def test_the_dashboard_counts_voicemail_and_missed_as_failed_forwards_and_its_links_open_exactly_them(
        admin_client, day_of_calls):
    live = soup(admin_client.get(url_for("dashboard.dashboard"))).find(id="dashboard-live")
    figures = {node["data-figure"]: node for node in live.select("[data-figure]")}
    # Voicemail (2) and missed (no answer, a hang-up); the test call and the unrouted one are no failed forward.
    assert text_of(figures["failed-today"]) == "4"
    assert text_of(figures["calls-today"]) == "6"
    for figure in ("failed-today", "calls-today"):
        stated, outcomes = log_rows(admin_client, figures[figure].find_parent("a")["href"])
        assert stated == len(outcomes) == int(text_of(figures[figure])), figure
    _, failed = log_rows(admin_client, figures["failed-today"].find_parent("a")["href"])
    assert sorted(failed) == ["missed", "missed", "voicemail", "voicemail"]

    panel = live.find(id="failed-calls").find_parent("section")
    assert sorted(text_of(badge) for badge in panel.select(".badge-outcome")) == sorted(failed)
    more = panel.find("a", string=re.compile("in the call log"))
    assert text_of(more) == "All 4 in the call log ›"
    assert log_rows(admin_client, more["href"])[0] == 4


def test_the_need_attention_figure_opens_the_numbers_it_counts(admin_client, day_of_calls):
    live = soup(admin_client.get(url_for("dashboard.dashboard"))).find(id="dashboard-live")
    figure = live.find(attrs={"data-figure": "attention"})
    numbers = soup(admin_client.get(figure.find_parent("a")["href"]))
    cards = numbers.select("article.number-card")
    # Red and yellow together: the unassigned sandbox numbers are pending, the one unrouted call made one red.
    assert {text_of(card.find(class_="status-label")) for card in cards} == {"Error", "Pending setup"}
    assert len(cards) == int(text_of(figure))


def test_the_client_chart_totals_open_exactly_the_calls_they_count(admin_client, day_of_calls):
    client, _ = day_of_calls
    chart = soup(admin_client.get(url_for("clients.client_detail", client_id=client.id))).find(
        id=f"client-{client.id}-analytics")
    totals = {node["data-total"]: node for node in chart.select("[data-total]")}
    shown = {key: text_of(node.find("dd")) for key, node in totals.items()}
    assert shown == {"calls": "5", "answered": "1", "voicemail": "2", "missed": "2", "answer-rate": "20%"}
    for key in ("calls", "answered", "voicemail", "missed"):
        stated, outcomes = log_rows(admin_client, totals[key].find("a")["href"])
        assert stated == len(outcomes) == int(shown[key]), key
        if key != "calls":
            assert set(outcomes) <= {key}


def test_every_call_has_one_of_the_six_words_in_the_log_the_csv_and_the_api(admin_client, day_of_calls):
    _, outcomes = log_rows(admin_client, url_for("calls.calls"))
    assert sorted(outcomes) == ["answered", "missed", "missed", "missed", "unrouted", "voicemail", "voicemail"]
    menu = soup(admin_client.get(url_for("calls.calls"))).find(id="filter-outcome")
    values = [option["value"] for option in menu.find_all("option")]
    assert values == ["", "answered", "voicemail", "missed", "blocked", "unrouted", "in progress", "voicemail,missed"]
    header, *rows = csv.reader(io.StringIO(
        admin_client.get(url_for("calls.export_calls"), buffered=True).get_data(as_text=True)))
    assert sorted(row[header.index("outcome")] for row in rows) == sorted(outcomes)
    api = admin_client.get("/api/call-records?per_page=200").get_json()["items"]
    assert sorted(item["outcome"] for item in api) == sorted(outcomes)
