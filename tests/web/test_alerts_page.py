"""The Alerts page: open alerts first with their numbers, acknowledgement, and whether admins were told."""
import socket

import pytest
import sqlalchemy as sa
from flask import url_for

from phoneapp.extensions import db
from phoneapp.models import Alert
from phoneapp.services.alerts import raise_alert, resolve_alerts
from phoneapp.services.notifications import send_pending_notifications
from tests.support.pages import ADMIN, HX, csrf_headers, form_token, login, soup, text_of

pytestmark = pytest.mark.usefixtures("request_context")


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def alert_for(subject):
    db.session.expire_all()
    return db.session.scalars(sa.select(Alert).where(Alert.subject == subject).order_by(Alert.id.desc())).first()


@pytest.fixture
def alerts(make_client, make_number):
    """An open error on a client's number (seen 3 times), an open warning, and a resolved error."""
    number = make_number(phone_number="+14155550142", client=make_client(name="Bay Plumbing"))
    for _ in range(3):
        raise_alert("failed_forwards", f"number:{number.id}", "forwarded calls keep failing", severity="error",
                    phone_assignment_id=number.id)
    raise_alert("unrouted_call", "+14155550199", "Calls to (415) 555-0199 go to the default number",
                severity="warning")
    raise_alert("number_missing", "number:old", "+14155550111 is no longer in the Twilio account", severity="error")
    db.session.commit()
    resolve_alerts("number_missing", "number:old")
    db.session.commit()
    return {"error": alert_for(f"number:{number.id}"), "warning": alert_for("+14155550199"),
            "resolved": alert_for("number:old"), "number": number}


def section(page, heading_id):
    return page.find("h2", id=heading_id).find_parent("section")


def test_alerts_page_needs_login(client, alerts):
    response = client.get(url_for("alerts.index"))
    assert response.status_code == 302
    assert response.headers["Location"].startswith(url_for("auth.login"))

    response = client.get(url_for("alerts.index"), headers=HX)
    assert response.status_code == 401
    assert response.headers["HX-Redirect"].startswith(url_for("auth.login"))


def test_logged_out_acknowledge_is_refused(client, alerts):
    token = form_token(client, "auth.login")
    response = client.post(url_for("alerts.acknowledge", alert_id=alerts["error"].id), data={"csrf_token": token})

    assert response.status_code == 302
    assert response.headers["Location"].startswith(url_for("auth.login"))
    assert alert_for(alerts["error"].subject).acknowledged_at is None


def test_lists_open_alerts_errors_first_then_resolved(staff_client, alerts):
    page = soup(staff_client.get(url_for("alerts.index")))

    open_rows = section(page, "open-alerts").select("tbody tr")
    assert [row["id"] for row in open_rows] == [f"alert-{alerts['error'].id}", f"alert-{alerts['warning'].id}"]
    error_row = open_rows[0]
    assert "forwarded calls keep failing" in text_of(error_row)
    assert text_of(error_row.find("td", class_="num")) == "3"
    link = error_row.find("a", string="(415) 555-0142")
    assert link["href"] == url_for("numbers.number_detail", number_id=alerts["number"].id)
    assert "Bay Plumbing" in text_of(error_row)
    assert error_row.find("button", string="Acknowledge") is not None
    assert "warning alerts are shown here only" in text_of(open_rows[1])

    resolved_rows = section(page, "resolved-alerts").select("tbody tr")
    assert [row["id"] for row in resolved_rows] == [f"alert-{alerts['resolved'].id}"]
    assert "no longer in the Twilio account" in text_of(resolved_rows[0])
    assert resolved_rows[0].find("button") is None


def test_nav_links_to_alerts_with_the_open_count(staff_client, alerts):
    page = soup(staff_client.get(url_for("alerts.index")))

    link = page.find("nav", class_="mainnav").find("a", href=url_for("alerts.index"))
    assert link["aria-current"] == "page"
    assert text_of(link) == "Alerts 2"


def test_acknowledge_without_htmx_redirects_back_and_shows_who(staff_client, alerts):
    alert = alerts["error"]
    token = form_token(staff_client, "alerts.index")

    response = staff_client.post(url_for("alerts.acknowledge", alert_id=alert.id), data={"csrf_token": token})

    assert response.status_code == 303
    assert response.headers["Location"] == url_for("alerts.index", _anchor=f"alert-{alert.id}")
    page = soup(staff_client.get(url_for("alerts.index")))
    row = page.find(id=f"alert-{alert.id}")
    assert "Sam Staff" in text_of(row.find("td", class_="alert-ack"))
    assert row.find("button", string="Acknowledge") is None
    assert "Alert acknowledged." in text_of(page.find(id="flashes"))
    assert alert_for(alert.subject).acknowledged_by.email == "staff@example.test"


def test_acknowledge_with_htmx_returns_the_updated_row(staff_client, alerts):
    alert = alerts["warning"]

    response = staff_client.post(url_for("alerts.acknowledge", alert_id=alert.id), headers=csrf_headers(staff_client))

    assert response.status_code == 200
    row = soup(response).find("tr")
    assert row["id"] == f"alert-{alert.id}"
    assert "Sam Staff" in text_of(row.find("td", class_="alert-ack"))
    assert row.find("button") is None
    assert alert_for(alert.subject).acknowledged_at is not None


def test_first_acknowledgement_stands(app, admin, staff_client, alerts):
    alert = alerts["error"]
    staff_client.post(url_for("alerts.acknowledge", alert_id=alert.id), headers=csrf_headers(staff_client))
    admin_client = app.test_client()
    assert login(admin_client, *ADMIN).status_code == 303

    response = admin_client.post(url_for("alerts.acknowledge", alert_id=alert.id), headers=csrf_headers(admin_client))

    assert response.status_code == 200
    assert "Sam Staff" in text_of(soup(response).find("td", class_="alert-ack"))
    assert alert_for(alert.subject).acknowledged_by.name == "Sam Staff"


def test_acknowledge_needs_the_csrf_token_and_a_real_alert(staff_client, alerts):
    response = staff_client.post(url_for("alerts.acknowledge", alert_id=alerts["error"].id))
    assert response.status_code == 400
    assert alert_for(alerts["error"].subject).acknowledged_at is None

    response = staff_client.post(url_for("alerts.acknowledge", alert_id=2_000_000_000),
                                 headers=csrf_headers(staff_client))
    assert response.status_code == 404


def test_rows_say_whether_admins_were_told(app, staff_client, alerts):
    send_pending_notifications()
    page = soup(staff_client.get(url_for("alerts.index")))
    assert "not sent: no recipients configured" in text_of(page.find(id=f"alert-{alerts['error'].id}"))

    app.config["ALERT_SMS_NUMBERS"] = ["+14155550177"]
    raise_alert("webhook_drift", "number:7", "+14155550107: voice URL is elsewhere", severity="error")
    db.session.commit()
    send_pending_notifications()
    closed_port = free_port()
    app.config["SMTP_URL"], app.config["ALERT_EMAILS"] = f"smtp://127.0.0.1:{closed_port}", ["ops@example.test"]
    raise_alert("webhook_drift", "number:8", "+14155550108: voice URL is elsewhere", severity="error")
    db.session.commit()
    app.config["ALERT_SMS_NUMBERS"] = []
    send_pending_notifications()

    page = soup(staff_client.get(url_for("alerts.index")))
    sent = text_of(page.find(id=f"alert-{alert_for('number:7').id}").find("td", class_="alert-notice"))
    assert sent.startswith("sent ") and sent.endswith("texted 1 number")
    failed = text_of(page.find(id=f"alert-{alert_for('number:8').id}").find("td", class_="alert-notice"))
    assert failed.startswith("failed, attempt 1 of 5")
    assert f"e-mail via 127.0.0.1:{closed_port} failed" in failed
