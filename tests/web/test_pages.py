"""Server-rendered pages and htmx partials: login, layout, number cards and their forms."""
import time

import pytest
import sqlalchemy as sa
from flask import url_for

from phoneapp.domain.call_status import TERMINAL_STATUSES
from phoneapp.extensions import db
from phoneapp.models import AuditEvent, CallRecord, PhoneAssignment
from phoneapp.sandbox.account import SandboxAccount
from phoneapp.services import users
from phoneapp.services.alerts import raise_alert
from phoneapp.services.simulator import place_simulated_call
from tests.support.apps import make_app
from tests.support.pages import ADMIN, HX, card, csrf_headers, form_token, login, soup, text_of

pytestmark = pytest.mark.usefixtures("request_context")

PAGES = [
    ("dashboard.dashboard", {}), ("numbers.numbers", {}), ("clients.clients", {}), ("calls.calls", {}),
    ("calls.calls", {"fragment": True}), ("dashboard.recent_calls_list", {}),
]


@pytest.mark.parametrize("endpoint, values", PAGES)
def test_pages_need_login(client, endpoint, values):
    url = url_for(endpoint, **values)
    response = client.get(url)
    assert response.status_code == 302
    assert response.headers["Location"].startswith(url_for("auth.login"))

    htmx = client.get(url, headers=HX)
    assert htmx.status_code == 401
    assert htmx.headers["HX-Redirect"].startswith(url_for("auth.login"))


def test_number_pages_need_login(client, make_number):
    number = make_number()
    for url in (url_for("numbers.number_detail", number_id=number.id),
                url_for("numbers.number_card", number_id=number.id)):
        assert client.get(url).status_code == 302
        assert client.get(url, headers=HX).status_code == 401
    assert client.post(url_for("numbers.update_number", number_id=number.id), headers=HX).status_code in (400, 401)


def test_layout_has_nav_user_logout_csrf_and_sandbox_banner(admin_client):
    page = soup(admin_client.get(url_for("dashboard.dashboard")))
    nav = page.find("nav", class_="mainnav")
    assert [a.get_text(strip=True) for a in nav.find_all("a")] == ["Dashboard", "Phone numbers", "Clients", "Call log",
                                                            "Block list", "Alerts", "Health", "Webhooks", "Users"]
    assert "Sandbox mode" in text_of(page.find(class_="sandbox-banner"))
    assert page.find("meta", {"name": "csrf-token"})["content"]
    logout = page.find("form", action=url_for("auth.logout"))
    assert logout["method"] == "post" and logout.find("input", {"name": "csrf_token"})
    assert "Ada Admin" in text_of(page.find(class_="userbox")) and "admin" in text_of(page.find(class_="userbox"))
    assert page.find("script", src=url_for("static", filename="vendor/htmx-2.0.11/htmx.min.js"))


def test_numbers_page_shows_a_card_per_number_with_label_and_reason(admin_client, assigned, sandbox_numbers):
    page = soup(admin_client.get(url_for("numbers.numbers")))
    cards = page.select("article.number-card")
    assert len(cards) == 4

    green = card(page, assigned)
    assert text_of(green.find(class_="status-label")) == "Forwarding"
    assert "Forwarding to (415) 555-0187" in text_of(green.find(class_="status-line"))
    assert "Acme Plumbing" in text_of(green)
    assert "client's phone" in text_of(green)
    assert "(415) 555-0101" in text_of(green.find(class_="card-title"))

    pending = card(page, sandbox_numbers[1])
    assert text_of(pending.find(class_="status-label")) == "Pending setup"
    assert text_of(pending.find(class_="status-line")) == "Not assigned to a client yet"
    assert pending.find("form", {"hx-post": url_for("numbers.simulate_call", number_id=sandbox_numbers[1].id)})


def test_card_shows_red_reason_from_an_open_error_alert(admin_client, assigned):
    raise_alert("webhook_errors", f"number:{assigned.id}", "Twilio reported webhook errors (11200)",
                severity="error", phone_assignment_id=assigned.id)
    db.session.commit()
    found = card(soup(admin_client.get(url_for("numbers.numbers"))), assigned)
    assert text_of(found.find(class_="status-label")) == "Error"
    assert text_of(found.find(class_="status-line")) == "Twilio reported webhook errors (11200)"


def test_assign_through_the_htmx_form_changes_the_card_and_is_audited(admin_client, sandbox_numbers, make_client):
    acme = make_client()
    number = sandbox_numbers[1]
    form = soup(admin_client.get(url_for("numbers.edit_number", fragment=True, number_id=number.id), headers=HX))
    assert form.find("article")["id"] == f"number-{number.id}"
    options = [o.get_text(strip=True) for o in form.find("select", {"name": "client_id"}).find_all("option")]
    assert options[0] == "— not assigned —" and any("Acme Plumbing" in o for o in options)

    response = admin_client.post(url_for("numbers.update_number", number_id=number.id),
                                 data={"client_id": str(acme.id), "forward_to_number": "", "friendly_name": "Ads"},
                                 headers=csrf_headers(admin_client))
    assert response.status_code == 200
    fresh = soup(response).find("article")
    assert fresh["id"] == f"number-{number.id}"
    assert "Acme Plumbing" in text_of(fresh)
    assert text_of(fresh.find(class_="status-label")) == "Forwarding"
    assert response.headers["HX-Trigger"] == "numbers-changed"
    counts = soup(admin_client.get(url_for("numbers.status_counts"), headers=HX))
    assert text_of(counts.find(attrs={"data-colour": "green"})) == "1"

    db.session.refresh(number)
    assert number.client_id == acme.id and number.friendly_name == "Ads"
    assert number.webhook_url == "https://calls.example.test/twilio/voice"
    event = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "assign")).one()
    assert event.subject_id == number.id and event.actor_label == "admin@example.test"
    assert event.after["client_id"] == acme.id


def test_assignment_is_kept_when_twilio_cannot_be_pointed_here(app, admin_client, sandbox_numbers, make_client):
    acme = make_client()
    number = sandbox_numbers[2]
    SandboxAccount.open(app.config["SANDBOX_STATE_PATH"]).remove_number(number.twilio_sid)
    response = admin_client.post(url_for("numbers.update_number", number_id=number.id),
                                 data={"client_id": str(acme.id), "forward_to_number": "", "friendly_name": ""},
                                 headers=csrf_headers(admin_client))
    assert response.status_code == 200
    fresh = soup(response)
    assert "Twilio is not pointed at phoneapp yet" in text_of(fresh.find(class_="card-note-warning"))
    assert text_of(fresh.find(class_="status-line")) == "Number is gone from the Twilio account"
    assert db.session.get(PhoneAssignment, number.id).client_id == acme.id


def test_change_target_then_unassign(admin_client, assigned):
    headers = csrf_headers(admin_client)
    url = url_for("numbers.update_number", number_id=assigned.id)
    response = admin_client.post(url, data={"client_id": str(assigned.client_id), "forward_to_number": "415 555 0166",
                                            "friendly_name": ""}, headers=headers)
    assert response.status_code == 200
    assert "override" in text_of(soup(response).find("article"))
    db.session.refresh(assigned)
    assert assigned.forward_to_number == "+14155550166"

    response = admin_client.post(url, data={"client_id": "", "forward_to_number": "", "friendly_name": ""},
                                 headers=headers)
    assert text_of(soup(response).find(class_="status-line")) == "Not assigned to a client yet"
    actions = db.session.scalars(sa.select(AuditEvent.action).where(AuditEvent.subject_id == assigned.id,
                                                                    AuditEvent.subject_type == "PhoneAssignment")).all()
    assert {"change_forward_target", "unassign"} <= set(actions)


def test_bad_forward_number_shows_the_reason_and_changes_nothing(admin_client, assigned):
    events_before = db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent))
    response = admin_client.post(url_for("numbers.update_number", number_id=assigned.id),
                                 data={"client_id": str(assigned.client_id), "forward_to_number": "12",
                                       "friendly_name": ""},
                                 headers=csrf_headers(admin_client))
    assert response.status_code == 422
    form = soup(response)
    assert form.find("article")["id"] == f"number-{assigned.id}"
    error = form.find(id="forward_to_number-error")
    assert error is not None and text_of(error)
    assert form.find("input", {"name": "forward_to_number"})["value"] == "12"
    db.session.expire_all()
    assert db.session.get(PhoneAssignment, assigned.id).forward_to_number is None
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent)) == events_before


def test_htmx_post_without_csrf_token_is_refused(admin_client, assigned):
    response = admin_client.post(url_for("numbers.update_number", number_id=assigned.id),
                                 data={"client_id": "", "forward_to_number": "", "friendly_name": ""}, headers=HX)
    assert response.status_code == 400
    db.session.expire_all()
    assert db.session.get(PhoneAssignment, assigned.id).client_id is not None


def test_deactivate_and_activate(admin_client, assigned):
    headers = csrf_headers(admin_client)
    url = url_for("numbers.set_number_active", number_id=assigned.id)
    off = soup(admin_client.post(url, data={"is_active": "false"}, headers=headers))
    assert text_of(off.find(class_="status-label")) == "Inactive"
    assert off.find("button", string="Activate")
    on = soup(admin_client.post(url, data={"is_active": "true"}, headers=headers))
    assert text_of(on.find(class_="status-label")) == "Forwarding"
    actions = db.session.scalars(sa.select(AuditEvent.action).order_by(AuditEvent.id)).all()
    assert actions[-2:] == ["deactivate", "activate"]


def test_plain_form_posts_redirect_with_303(admin_client, assigned):
    token = form_token(admin_client, "numbers.edit_number", number_id=assigned.id)
    response = admin_client.post(url_for("numbers.set_number_active", number_id=assigned.id),
                                 data={"is_active": "false", "csrf_token": token})
    assert response.status_code == 303
    assert response.headers["Location"] == url_for("numbers.number_detail", number_id=assigned.id)
    bad = admin_client.post(url_for("numbers.update_number", number_id=assigned.id),
                            data={"client_id": "", "forward_to_number": "nope", "friendly_name": "",
                                  "csrf_token": token})
    assert bad.status_code == 422
    assert soup(bad).find("html") and soup(bad).find(id="forward_to_number-error")


def test_simulate_a_call_from_the_card(admin_client, assigned):
    response = admin_client.post(url_for("numbers.simulate_call", number_id=assigned.id),
                                 data={"outcome": "busy"}, headers=csrf_headers(admin_client))
    assert response.status_code == 200
    fresh = soup(response).find("article")
    assert "Calling…" in text_of(fresh.find(class_="card-note"))
    assert fresh["hx-trigger"] == "every 2s"
    deadline = time.monotonic() + 10
    record = None
    while time.monotonic() < deadline:
        db.session.expire_all()
        record = db.session.scalars(sa.select(CallRecord).where(CallRecord.phone_assignment_id == assigned.id)).first()
        # The card polls until the call has ended: its final status callback comes after the dial result.
        if record is not None and record.dial_status and record.status in TERMINAL_STATUSES:
            break
        time.sleep(0.1)
    assert record is not None and record.dial_status == "busy" and record.status in TERMINAL_STATUSES
    done = soup(admin_client.get(url_for("numbers.number_card", number_id=assigned.id)))
    assert not done.find("article").has_attr("hx-trigger")
    assert text_of(done.find(class_="calls-today")) == "1"


def test_number_detail_shows_config_history_and_audit(admin_client, assigned):
    place_simulated_call(assigned.phone_number, outcome="answered", background=False, pace=0)
    page = soup(admin_client.get(url_for("numbers.number_detail", number_id=assigned.id)))
    assert card(page, assigned) is not None
    assert "https://calls.example.test/twilio/voice" in text_of(page)
    assert len(page.select("#calls-table tbody tr")) == 1
    assert "answered" in text_of(page.select_one("#calls-table tbody tr"))
    trail = text_of(page.find(class_="timeline"))
    assert "Assigned" in trail and "Acme Plumbing" in trail


def partial_urls(number):
    return [url_for("numbers.number_card", number_id=number.id),
            url_for("numbers.edit_number", fragment=True, number_id=number.id),
            url_for("calls.calls", fragment=True), url_for("dashboard.recent_calls_list"),
            url_for("numbers.status_counts")]


@pytest.mark.parametrize("headers", [HX, {}], ids=["htmx", "direct"])
def test_partials_answer_with_and_without_htmx(admin_client, assigned, headers):
    for url in partial_urls(assigned):
        response = admin_client.get(url, headers=headers)
        assert response.status_code == 200, url
        fragment = soup(response)
        assert fragment.find("html") is None and fragment.find("body") is None, url
        root = fragment.find(True)
        assert root.get("id") in (f"number-{assigned.id}", "calls-table", "recent-calls", "status-counts"), url


def test_staff_can_use_the_pages(staff_client, assigned):
    assert staff_client.get(url_for("numbers.numbers")).status_code == 200
    response = staff_client.post(url_for("numbers.set_number_active", number_id=assigned.id),
                                 data={"is_active": "false"}, headers=csrf_headers(staff_client))
    assert response.status_code == 200
    event = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "deactivate")).one()
    assert event.actor_label == "staff@example.test"


def test_unknown_number_is_404(admin_client):
    assert admin_client.get(url_for("numbers.number_detail", number_id=999)).status_code == 404
    response = admin_client.get(url_for("numbers.number_card", number_id=999), headers=HX)
    assert response.status_code == 404 and soup(response).find(class_="fragment-error")


def test_no_simulated_calls_with_a_real_twilio_account(tmp_path):
    real = make_app(tmp_path / "real", TWILIO_ACCOUNT_SID="AC" + "0" * 32, TWILIO_AUTH_TOKEN="f" * 32)
    with real.app_context():
        users.create_user(*ADMIN, role="admin")
        number = PhoneAssignment(twilio_sid="PN" + "1" * 32, phone_number="+14155550199")
        db.session.add(number)
        db.session.commit()
        browser = real.test_client()
        assert login(browser, *ADMIN).status_code == 303
        page = soup(browser.get(url_for("numbers.numbers")))
        assert page.find(class_="sandbox-banner") is None
        assert card(page, number) is not None and card(page, number).find("form", class_="simulate") is None
        response = browser.post(url_for("numbers.simulate_call", number_id=number.id), headers=csrf_headers(browser))
        assert response.status_code == 404
        db.session.remove()
        db.engine.dispose()
