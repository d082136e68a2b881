"""Each user's own time zone: set on their account page, used for the times their pages and exports show."""
import csv
import io
from datetime import datetime

import pytest
import sqlalchemy as sa
from flask import url_for

from phoneapp.extensions import db
from phoneapp.models import CallRecord, User
from tests.support.apps import make_app
from tests.support.pages import ADMIN, STAFF, form_token, login, soup, text_of

pytestmark = pytest.mark.usefixtures("request_context")

APP_ZONE = "America/New_York"


@pytest.fixture
def app(tmp_path, migrated_postgres):
    app = make_app(tmp_path, APP_TIMEZONE=APP_ZONE)
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def call(make_number):
    """One call, at 16:00 UTC on March 5: 11:00 in New York, 01:00 on March 6 in Tokyo."""
    number = make_number()
    db.session.execute(sa.insert(CallRecord), [{
        "twilio_call_sid": "CA" + "5" * 32, "phone_assignment_id": number.id, "from_number": "+12025550143",
        "to_number": number.phone_number, "status": "completed", "started_at": datetime(2024, 3, 5, 16)}])
    db.session.commit()


@pytest.fixture
def admin_browser(app, admin):
    """The admin, signed in in a browser of their own, beside the staff user's."""
    browser = app.test_client()
    assert login(browser, *ADMIN).status_code == 303
    return browser


def choose_zone(browser, zone):
    token = form_token(browser, "users.account")
    return browser.post(url_for("users.set_own_timezone"), data={"timezone": zone, "csrf_token": token})


def shown_time(browser):
    row = soup(browser.get(url_for("calls.calls"))).select_one("#calls-table tbody tr")
    return text_of(row.find("time")), row.find("time")["title"]


def exported_start(browser):
    response = browser.get(url_for("calls.export_calls"), buffered=True)
    return next(csv.DictReader(io.StringIO(response.get_data(as_text=True))))["started_at"]


def zone_of(email):
    db.session.expire_all()
    return db.session.scalars(sa.select(User.timezone).where(User.email == email)).one()


def test_a_user_who_picks_tokyo_sees_tokyo_times_while_others_keep_the_apps(staff_client, admin_browser, call):
    response = choose_zone(staff_client, "Asia/Tokyo")
    assert response.status_code == 303 and response.headers["Location"] == url_for("users.account")
    assert zone_of(STAFF[0]) == "Asia/Tokyo"

    assert shown_time(staff_client) == ("Mar 06, 01:00", "2024-03-06 01:00:00 JST")
    assert shown_time(admin_browser) == ("Mar 05, 11:00", "2024-03-05 11:00:00 EST")
    assert "Times are Asia/Tokyo (yours)" in text_of(soup(staff_client.get(url_for("calls.calls"))))
    assert exported_start(staff_client) == "2024-03-06T01:00:00+09:00"
    assert exported_start(admin_browser) == "2024-03-05T11:00:00-05:00"

    page = soup(staff_client.get(url_for("users.account")))
    assert page.find("select", {"name": "timezone"}).find("option", selected=True)["value"] == "Asia/Tokyo"

    assert choose_zone(staff_client, "").status_code == 303
    assert zone_of(STAFF[0]) is None
    assert shown_time(staff_client) == ("Mar 05, 11:00", "2024-03-05 11:00:00 EST")


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "../../etc/passwd", "tokyo", "X" * 65, "Asia/Tokyo\x00"])
def test_a_zone_that_is_not_an_iana_name_is_refused_beside_the_field(staff_client, zone):
    assert choose_zone(staff_client, "Europe/Paris").status_code == 303

    response = choose_zone(staff_client, zone)

    assert response.status_code == 422
    page = soup(response)
    assert "time zone" in text_of(page.find(id="timezone-error"))
    assert page.find("select", {"name": "timezone"})["aria-describedby"] == "timezone-error"
    assert zone_of(STAFF[0]) == "Europe/Paris"


def test_the_setting_is_only_ever_ones_own(staff_client, admin):
    assert staff_client.get(url_for("users.account")).status_code == 200
    assert staff_client.get(url_for("users.index")).status_code == 403
    assert staff_client.get(url_for("users.detail", user_id=admin.id)).status_code == 403
    assert choose_zone(staff_client, "Asia/Tokyo").status_code == 303
    assert (zone_of(STAFF[0]), zone_of(ADMIN[0])) == ("Asia/Tokyo", None)


def test_signed_out_the_account_page_asks_for_a_login_and_a_change_is_refused(client):
    assert client.get(url_for("users.account")).status_code == 302
    assert client.post(url_for("users.set_own_timezone"), data={"timezone": "Asia/Tokyo"}).status_code == 400
