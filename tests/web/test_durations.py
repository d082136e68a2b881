"""Call and voicemail lengths read as m:ss under an hour and h:mm:ss from an hour up, wherever a page shows them."""
from datetime import datetime

import pytest
import sqlalchemy as sa
from flask import url_for

from phoneapp.domain.durations import format_duration
from phoneapp.extensions import db
from phoneapp.models import CallRecord
from tests.support.pages import soup, text_of


@pytest.mark.parametrize(("seconds", "shown"), [
    (0, "0:00"),
    (11, "0:11"),
    (59, "0:59"),
    (60, "1:00"),
    (3599, "59:59"),
    (3600, "1:00:00"),
    (3723, "1:02:03"),
    (86400, "24:00:00"),
    (None, ""),
])
def test_a_duration_reads_as_minutes_and_seconds_below_an_hour_and_with_hours_from_one(seconds, shown):
    assert format_duration(seconds) == shown


@pytest.mark.usefixtures("request_context")
def test_the_call_log_shows_a_day_long_call_in_hours_and_a_short_voicemail_in_minutes(
        admin_client, make_client, make_number):
    number = make_number(client=make_client())
    common = {"phone_assignment_id": number.id, "client_id": number.client_id, "from_number": "+12025550143",
              "to_number": number.phone_number, "forwarded_to": "+14155550187", "routed_by": "assignment",
              "status": "completed", "is_test": False}
    db.session.execute(sa.insert(CallRecord), [
        {**common, "twilio_call_sid": "CAday", "dial_status": "completed", "duration": 86400,
         "started_at": datetime(2024, 3, 5, 16)},
        {**common, "twilio_call_sid": "CAvm", "dial_status": "no-answer", "duration": 41,
         "voicemail_url": "https://api.twilio.com/2010-04-01/Accounts/AC0/Recordings/RE1", "voicemail_duration": 11,
         "started_at": datetime(2024, 3, 5, 15)},
    ])
    db.session.commit()

    response = admin_client.get(url_for("calls.calls"))
    assert response.status_code == 200
    rows = {row["data-call-sid"]: row for row in soup(response).select("#calls-table tbody tr")}
    assert text_of(rows["CAday"].find(attrs={"data-label": "Duration"})) == "24:00:00"
    assert text_of(rows["CAvm"].find(attrs={"data-label": "Duration"})) == "0:41"
    assert text_of(rows["CAvm"].find("a", string=lambda text: text and "Voicemail" in text)) == "Voicemail (0:11)"
    assert "1440:00" not in response.get_data(as_text=True)
