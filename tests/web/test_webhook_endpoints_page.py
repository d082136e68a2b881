"""The Webhooks pages: an admin adds an endpoint and sees its secret once, reasons beside the fields, the live
deliveries log with Redeliver, switching on and off, and what staff may do."""
import pytest
import sqlalchemy as sa
from flask import url_for

from phoneapp.extensions import db
from phoneapp.models import WebhookDelivery, WebhookEndpoint
from phoneapp.services.webhook_endpoints import create_endpoint
from tests.support.pages import HX, form_token, soup, text_of
from tests.support.webhook_endpoint_rows import failed_delivery

pytestmark = pytest.mark.usefixtures("request_context")

UNRESOLVED = "https://hooks.example.invalid/phoneapp"
ALL_EVENTS = ["call.completed", "call.missed", "voicemail.created", "number.status_changed"]


def add_through_page(client, **fields):
    data = {"url": UNRESOLVED, "description": "", "client_id": "", "events": ALL_EVENTS, **fields,
            "csrf_token": form_token(client, "webhook_endpoints.index")}
    return client.post(url_for("webhook_endpoints.create"), data=data)


def endpoint_rows():
    return db.session.scalars(sa.select(WebhookEndpoint)).all()


def an_endpoint(**fields):
    return create_endpoint({"url": UNRESOLVED, "events": ["call.completed"], **fields}, allow_private=False)


def test_an_admin_adds_an_endpoint_and_sees_the_secret_once(admin_client, make_client):
    acme = make_client()
    page = soup(admin_client.get(url_for("webhook_endpoints.index")))
    assert text_of(page.select_one(".mainnav a.active")) == "Webhooks"
    assert [box["value"] for box in page.select("input[name=events][checked]")] == ALL_EVENTS

    response = add_through_page(admin_client, client_id=str(acme.id), description="CRM",
                                events=["call.missed", "voicemail.created"])
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    (endpoint,) = endpoint_rows()
    shown = soup(response)
    assert text_of(shown.select_one("#secret-value")) == endpoint.secret
    assert "it will not be shown again" in text_of(shown.select_one("[role=alert]"))
    assert (endpoint.events, endpoint.client_id, endpoint.description) == (["call.missed", "voicemail.created"],
                                                                           acme.id, "CRM")

    done = shown.select_one("a.btn-primary")["href"]
    for later in (admin_client.get(done), admin_client.get(url_for("webhook_endpoints.index"))):
        assert later.status_code == 200
        assert endpoint.secret not in later.get_data(as_text=True)
    detail = soup(admin_client.get(done))
    assert f"whsec_…{endpoint.secret[-4:]}" in text_of(detail)
    row = text_of(soup(admin_client.get(url_for("webhook_endpoints.index"))).select_one(f"#endpoint-{endpoint.id}"))
    assert UNRESOLVED in row and "call.missed, voicemail.created" in row and "Acme Plumbing" in row
    assert "none yet" in row


@pytest.mark.parametrize("fields, field, reason", [
    ({"url": "https://127.0.0.1/hook"}, "url", "resolves to 127.0.0.1, a loopback address"),
    ({"url": "https://metadata.google.internal/"}, "url", "is a cloud metadata service"),
    ({"url": "hooks.example.com"}, "url", "must start with https://"),
    ({"events": []}, "events", "choose at least one of"),
    ({"client_id": "acme"}, "client_id", "choose a client from the list"),
])
def test_a_refused_endpoint_shows_the_reason_beside_the_field(admin_client, fields, field, reason):
    response = add_through_page(admin_client, **fields)
    assert response.status_code == 422
    page = soup(response)
    assert reason in text_of(page.select_one(f"#{field}-error"))
    assert "The endpoint was not added" in text_of(page.select_one(".form-error"))
    assert page.select_one("#endpoint-url")["value"] == fields.get("url", UNRESOLVED)
    assert endpoint_rows() == []


def test_the_flag_lets_an_admin_add_a_receiver_on_this_machine(app, admin_client):
    app.config["OUTBOUND_WEBHOOKS_ALLOW_PRIVATE"] = True
    assert add_through_page(admin_client, url="http://127.0.0.1:9000/hook").status_code == 200
    assert [endpoint.url for endpoint in endpoint_rows()] == ["http://127.0.0.1:9000/hook"]


def test_staff_see_endpoints_but_cannot_add_switch_or_delete(staff_client):
    endpoint = an_endpoint()
    page = soup(staff_client.get(url_for("webhook_endpoints.index")))
    assert page.select_one(f"#endpoint-{endpoint.id}") is not None
    create_url = url_for("webhook_endpoints.create")
    assert page.select_one(f"form[action='{create_url}']") is None
    detail = soup(staff_client.get(url_for("webhook_endpoints.detail", endpoint_id=endpoint.id)))
    assert not detail.select("form[data-confirm]")
    token = form_token(staff_client, "webhook_endpoints.index")
    for url in (url_for("webhook_endpoints.create"), url_for("webhook_endpoints.set_active", endpoint_id=endpoint.id),
                url_for("webhook_endpoints.delete", endpoint_id=endpoint.id)):
        assert staff_client.post(url, data={"csrf_token": token, "url": UNRESOLVED, "events": ALL_EVENTS,
                                            "active": "0"}).status_code == 403, url
    assert [(e.id, e.is_active) for e in endpoint_rows()] == [(endpoint.id, True)]


def test_redeliver_on_the_log_makes_the_delivery_pending_and_the_log_live(staff_client):
    endpoint = an_endpoint()
    delivery = failed_delivery(endpoint.id)
    detail_url = url_for("webhook_endpoints.detail", endpoint_id=endpoint.id)
    page = soup(staff_client.get(detail_url))
    row = page.select_one(f"#delivery-{delivery.id}")
    assert "call.completed" in text_of(row) and "failed" in text_of(row) and "HTTP 500" in text_of(row)
    live = page.select_one("#deliveries-live")
    assert live["data-pending"] == "false" and not live.has_attr("hx-trigger")

    button_form = row.select_one("form")
    response = staff_client.post(button_form["action"], data={"csrf_token": button_form.select_one(
        "input[name=csrf_token]")["value"]})
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"{detail_url}#deliveries")
    assert db.session.get(WebhookDelivery, delivery.id).state == "pending"

    page = soup(staff_client.get(detail_url))
    live = page.select_one("#deliveries-live")
    fragment_url = url_for("webhook_endpoints.detail", endpoint_id=endpoint.id, fragment=True)
    assert live["data-pending"] == "true" and live["hx-get"] == fragment_url and live["hx-trigger"] == "every 3s"
    assert "pending" in text_of(page.select_one(f"#delivery-{delivery.id}"))
    for headers in (HX, {}):
        fragment = staff_client.get(fragment_url, headers=headers)
        assert fragment.status_code == 200
        assert soup(fragment).select_one("#deliveries-live")["data-pending"] == "true"
        assert b"<html" not in fragment.data


def test_an_admin_switches_an_endpoint_off_and_on_and_deletes_it(admin_client):
    endpoint = an_endpoint()
    detail_url = url_for("webhook_endpoints.detail", endpoint_id=endpoint.id)
    token = form_token(admin_client, "webhook_endpoints.index")
    switch_url = url_for("webhook_endpoints.set_active", endpoint_id=endpoint.id)

    response = admin_client.post(switch_url, data={"csrf_token": token, "active": "0"})
    assert response.status_code == 303 and response.headers["Location"].endswith(detail_url)
    state = text_of(soup(admin_client.get(detail_url)).select_one("#endpoint-state"))
    assert state.startswith("off: switched off by admin@example.test")
    row = text_of(soup(admin_client.get(url_for("webhook_endpoints.index"))).select_one(f"#endpoint-{endpoint.id}"))
    assert "off switched off by admin@example.test" in row

    admin_client.post(switch_url, data={"csrf_token": token, "active": "1"})
    assert text_of(soup(admin_client.get(detail_url)).select_one("#endpoint-state")) == "on"

    response = admin_client.post(url_for("webhook_endpoints.delete", endpoint_id=endpoint.id),
                                 data={"csrf_token": token})
    assert response.status_code == 303
    assert response.headers["Location"].endswith(url_for("webhook_endpoints.index"))
    assert endpoint_rows() == []
    assert admin_client.get(detail_url).status_code == 404
