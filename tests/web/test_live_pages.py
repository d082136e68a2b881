"""Status dots from their real causes, the cards' live updates, the dashboard's figures and the Test button."""
from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask import url_for

from phoneapp.extensions import db
from phoneapp.models import CallRecord, JobRun, PhoneAssignment, TestCall, utcnow
from phoneapp.sandbox.account import SandboxAccount
from phoneapp.services import assignments
from phoneapp.web.numbers import CHANGES_OVERLAP
from tests.support.jobs import run_queued_jobs
from tests.support.pages import HX, card, csrf_headers, soup, text_of

pytestmark = pytest.mark.usefixtures("request_context")


def call_params(number, sid, **extra):
    return {"CallSid": sid, "AccountSid": "AC" + "0" * 32, "From": "+14155550100", "To": number.phone_number,
            "CallStatus": "ringing", **extra}


def ring(signed_post, number, sid, dial_status=None):
    """A call to `number` through the real webhooks; with `dial_status`, its forwarded leg ends so."""
    signed_post("/twilio/voice", call_params(number, sid))
    if dial_status:
        signed_post("/twilio/dial-status", call_params(number, sid, CallStatus="in-progress",
                                                       DialCallStatus=dial_status))
        signed_post("/twilio/status", call_params(number, sid, CallStatus="completed", CallDuration="30"))


def dot(client, number, page="card"):
    """The card's colour, label and reason as a reader sees them, on its own or on the numbers page."""
    if page == "card":
        found = soup(client.get(url_for("numbers.number_card", number_id=number.id), headers=HX))
    else:
        found = card(soup(client.get(url_for("numbers.numbers"))), number)
    badge = found.find(class_="status")
    colour = next(name.removeprefix("status-") for name in badge["class"] if name != "status")
    return colour, text_of(badge.find(class_="status-label")), text_of(found.find(class_="status-line"))


def press_test(client, number):
    """Test (dry check only) on the card, run by a worker; returns the card showing the finished test."""
    response = client.post(url_for("numbers.test_number", number_id=number.id), data={"live": "0"},
                           headers=csrf_headers(client))
    assert response.status_code == 200
    run_queued_jobs(client.application)
    test = db.session.scalars(sa.select(TestCall).order_by(TestCall.id.desc())).first()
    return client.get(url_for("numbers.number_card", number_id=number.id, test_call=test.id), headers=HX)


def account_of(app):
    return SandboxAccount.open(app.config["SANDBOX_STATE_PATH"])


def test_green_when_assigned_verified_and_calls_get_answered(admin_client, assigned, signed_post):
    ring(signed_post, assigned, "CA" + "1" * 32, dial_status="completed")
    assert dot(admin_client, assigned) == ("green", "Forwarding", "Forwarding to (415) 555-0187")


@pytest.mark.parametrize("cause, reason", [
    ("unassigned", "Not assigned to a client yet"),
    ("never verified", "Twilio's configuration not verified yet"),
    ("verifying", "Verifying Twilio's configuration…"),
    ("verified too long ago", "Twilio's configuration due for a new check"),
])
def test_yellow_causes(app, admin_client, sandbox_numbers, assigned, cause, reason):
    number = sandbox_numbers[1] if cause == "unassigned" else assigned
    if cause == "never verified":
        number.config_state, number.last_verified_at = "unverified", None
    elif cause == "verifying":
        number.verify_queued_at = utcnow()
    elif cause == "verified too long ago":
        number.last_verified_at = utcnow() - timedelta(seconds=app.config["VERIFY_MAX_AGE"] + 60)
    db.session.commit()
    assert dot(admin_client, number) == ("yellow", "Pending setup", reason)


@pytest.mark.parametrize("cause", ["never verified", "verified too long ago"])
def test_opening_the_numbers_page_queues_a_check_of_stale_numbers_and_shows_them_verifying(
        app, admin_client, assigned, cause):
    assigned.last_verified_at = None if cause == "never verified" else (
        utcnow() - timedelta(seconds=app.config["VERIFY_MAX_AGE"] + 60))
    db.session.commit()
    page = soup(admin_client.get(url_for("numbers.numbers")))
    shown = card(page, assigned)
    assert text_of(shown.select_one(".verifying")) == "verifying…"
    assert text_of(shown.find(class_="status-line")) == "Verifying Twilio's configuration…"
    queued = db.session.scalars(sa.select(JobRun)).all()
    assert [(run.name, run.status) for run in queued] == [("verify_some_numbers", "queued")]
    assert assigned.id in queued[0].args[0]
    # Opening the page again while the check waits queues nothing more.
    admin_client.get(url_for("numbers.numbers"))
    assert db.session.scalar(sa.select(sa.func.count()).select_from(JobRun)) == 1
    run_queued_jobs(app)
    assert dot(admin_client, assigned, page="numbers")[0] == "green"
    assert db.session.get(PhoneAssignment, assigned.id).verify_queued_at is None


def test_red_when_the_number_is_gone_from_the_twilio_account(app, admin_client, assigned):
    account_of(app).remove_number(assigned.twilio_sid)
    press_test(admin_client, assigned)
    assert dot(admin_client, assigned) == ("red", "Error", "Number is gone from the Twilio account")


def test_red_when_twilio_points_elsewhere(app, admin_client, assigned):
    account_of(app).update_number(assigned.twilio_sid, voice_url="https://old-tracker.example/voice")
    press_test(admin_client, assigned)
    colour, label, reason = dot(admin_client, assigned)
    assert (colour, label) == ("red", "Error")
    assert "voice URL is https://old-tracker.example/voice" in reason


def test_red_when_recent_forwards_keep_failing_and_green_again_once_one_is_answered(
        admin_client, assigned, signed_post):
    for n, dial_status in enumerate(["no-answer", "busy", "failed"]):
        ring(signed_post, assigned, f"CA{n:032x}", dial_status=dial_status)
    colour, label, reason = dot(admin_client, assigned)
    assert (colour, label) == ("red", "Error") and "3" in reason
    ring(signed_post, assigned, "CA" + "f" * 32, dial_status="completed")
    assert dot(admin_client, assigned)[0] == "green"


def test_red_when_the_target_is_not_a_phone_number(admin_client, assigned):
    assigned.forward_to_number = "+1555"  # stored before validation existed; the form refuses it today
    db.session.commit()
    assert dot(admin_client, assigned) == ("red", "Error", "Forward target +1555 is not a valid phone number")


def test_grey_when_switched_off(admin_client, assigned):
    assignments.update_assignment(assigned, {"is_active": False})
    assert dot(admin_client, assigned) == ("grey", "Inactive", "Switched off by staff")


def test_dots_never_rely_on_colour_alone(admin_client, assigned, sandbox_numbers):
    page = soup(admin_client.get(url_for("numbers.numbers")))
    for badge in page.select("article.number-card .status"):
        assert badge.find(class_="dot")["aria-hidden"] == "true"
        assert text_of(badge.find(class_="status-label"))
    assert all(text_of(line) for line in page.select("article.number-card .status-line"))


def test_the_api_gives_the_same_status_as_the_card(admin_client, assigned):
    account_of(admin_client.application).remove_number(assigned.twilio_sid)
    press_test(admin_client, assigned)
    listed = {item["id"]: item["status"] for item in admin_client.get("/api/phone-assignments").get_json()["items"]}
    assert listed[assigned.id] == {"colour": "red", "key": "error", "label": "Error",
                                   "reason": "Number is gone from the Twilio account"}


def test_test_button_passes_both_checks_and_records_no_call(admin_client, assigned):
    page = soup(press_test(admin_client, assigned))
    steps = [text_of(step) for step in page.select(".check-step.check-pass")]
    assert steps == ["✓ Twilio's configuration : Voice URL, fallback and status callback point at phoneapp",
                     "✓ phoneapp's answer : Forwards to (415) 555-0187",
                     "✓ Checked : Dry check passed; no live call was asked for"]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(CallRecord)) == 0


def test_test_button_names_what_is_wrong(app, admin_client, assigned):
    account_of(app).update_number(assigned.twilio_sid, voice_url="https://old-tracker.example/voice")
    assigned.forward_to_number = "+1555"
    db.session.commit()
    shown = soup(press_test(admin_client, assigned))
    failed = shown.select(".check-fail")
    assert len(failed) == 3
    assert "voice URL is https://old-tracker.example/voice" in text_of(failed[0])
    assert "Forward target +1555 is not a valid phone number" in text_of(failed[1])
    assert text_of(failed[2]).startswith("✗ Failed : Dry check failed: Twilio's configuration differs")
    assert "Test failed" in text_of(shown.select_one(".test-call-head"))


def test_test_button_without_htmx_flashes_the_results_on_the_number_page(admin_client, assigned):
    response = admin_client.post(url_for("numbers.test_number", number_id=assigned.id),
                                 data={"csrf_token": csrf_headers(admin_client)["X-CSRFToken"], "live": "0"})
    assert response.status_code == 303
    run_queued_jobs(admin_client.application)
    page = soup(admin_client.get(response.headers["Location"]))
    assert "Test started" in text_of(page.select_one(".flashes"))
    assert "phoneapp's answer : Forwards to (415) 555-0187" in text_of(page.select_one("#test-panel"))


def changes(client, shown, since):
    """The page's poll, asking for changes after `since` (the server looks back an overlap further)."""
    return soup(client.get(url_for("numbers.number_changes", since=(since + CHANGES_OVERLAP).isoformat(),
                                   card=[number.id for number in shown]), headers=HX))


def test_one_poll_brings_back_only_the_cards_that_changed(admin_client, assigned, sandbox_numbers, signed_post):
    quiet = sandbox_numbers[1]
    page = soup(admin_client.get(url_for("numbers.numbers")))
    # Opening the page queued checks of the never-verified numbers; changes from here on are what count.
    before = utcnow()
    poll = page.find(id="number-changes")
    assert poll["hx-trigger"] == "every 3s" and poll["hx-include"] == ".number-card > input[name=card]"
    assert len(page.select(".number-card > input[name=card]")) == 4

    ring(signed_post, assigned, "CA" + "1" * 32)
    answer = changes(admin_client, [assigned, quiet], before)
    swapped = answer.select("[hx-swap-oob]")
    assert [node["id"] for node in swapped] == [f"number-{assigned.id}", "status-counts"]
    assert text_of(swapped[0].find(class_="calls-today")) == "1"
    assert "Call in progress from (415) 555-0100" in text_of(swapped[0])
    assert answer.find(id="number-changes")["hx-get"].startswith(url_for("numbers.number_changes"))

    later = changes(admin_client, [assigned, quiet], utcnow())
    assert later.select("[hx-swap-oob]") == []


def test_a_card_being_edited_is_left_alone(admin_client, assigned, signed_post):
    before = utcnow()
    ring(signed_post, assigned, "CA" + "1" * 32)
    assert changes(admin_client, [], before).select("[hx-swap-oob]") == []


def test_dashboard_counts_failed_forwards_and_names_numbers_needing_attention(
        admin_client, assigned, sandbox_numbers, signed_post):
    ring(signed_post, assigned, "CA" + "1" * 32, dial_status="completed")
    ring(signed_post, assigned, "CA" + "2" * 32, dial_status="no-answer")
    old = "CA" + "3" * 32
    ring(signed_post, assigned, old, dial_status="busy")
    db.session.execute(sa.update(CallRecord).where(CallRecord.twilio_call_sid == old)
                       .values(started_at=utcnow() - timedelta(hours=25)))
    db.session.commit()
    for response in (admin_client.get(url_for("dashboard.dashboard")),
                     admin_client.get(url_for("dashboard.dashboard", fragment=True), headers=HX)):
        live = soup(response).find(id="dashboard-live")
        assert live["hx-trigger"] == "every 5s"
        figures = {node["data-figure"]: text_of(node) for node in live.select("[data-figure]")}
        # Three of the four sandbox numbers are unassigned, so pending; the answered one forwards.
        assert figures == {"calls-today": "2", "forwarding": "1", "failed-today": "1", "attention": "3"}
        failed = live.find(id="failed-calls").find_parent("section")
        assert len(failed.select(".list-row")) == 1
        missed = db.session.scalar(sa.select(CallRecord.id).where(CallRecord.twilio_call_sid == "CA" + "2" * 32))
        assert failed.find("a", href=url_for("numbers.number_detail", number_id=assigned.id) + f"#call-{missed}")
        attention = live.find(id="attention").find_parent("section")
        named = [text_of(row.find("a")) for row in attention.select(".list-row")]
        assert named == ["(415) 555-0102", "(415) 555-0103", "(415) 555-0104"]


@pytest.mark.parametrize("endpoint, values, root", [
    ("dashboard.dashboard", {"fragment": True}, "dashboard-live"),
    ("dashboard.recent_calls_list", {}, "recent-calls"),
    ("numbers.status_counts", {}, "status-counts"),
    ("numbers.number_changes", {}, "number-changes"),
    ("calls.calls", {"fragment": True}, "calls-table"),
])
@pytest.mark.parametrize("headers", [HX, {}], ids=["htmx", "direct"])
def test_live_partials_answer_with_and_without_htmx(admin_client, assigned, endpoint, values, root, headers):
    response = admin_client.get(url_for(endpoint, **values), headers=headers)
    assert response.status_code == 200
    fragment = soup(response)
    assert fragment.find(id=root) is not None
    assert fragment.find("html") is None


def test_numbers_page_filters_by_status_and_search_and_pages(admin_client, assigned, sandbox_numbers):
    def shown(**args):
        page = soup(admin_client.get(url_for("numbers.numbers", **args)))
        return [int(node["value"]) for node in page.select(".number-card > input[name=card]")]

    assert shown(status="forwarding") == [assigned.id]
    assert shown(status="pending") == [number.id for number in sandbox_numbers[1:]]
    assert shown(q="Acme") == [assigned.id]
    assert shown(q="555-0103") == [sandbox_numbers[2].id]
    assert shown(status="nonsense") == [number.id for number in sandbox_numbers]
    assert shown(page=2) == []


def seed_numbers_with_calls(client_row, count, start):
    """`count` numbers of one client, each with an answered call today, a failed one and an old one."""
    now = utcnow()
    db.session.execute(sa.insert(PhoneAssignment), [
        {"twilio_sid": f"PN{start + n:032x}", "phone_number": f"+1312555{start + n:04d}", "client_id": client_row.id,
         "config_state": ["ok", "drift", "unverified"][n % 3], "last_verified_at": now, "last_call_at": now,
         "failed_forward_streak": n % 4}
        for n in range(count)])
    ids = db.session.scalars(sa.select(PhoneAssignment.id).where(PhoneAssignment.twilio_sid.in_(
        [f"PN{start + n:032x}" for n in range(count)]))).all()
    calls = []
    for n, number_id in enumerate(ids):
        for kind, (dial_status, status, age) in enumerate([("completed", "completed", 1), ("no-answer", "completed", 2),
                                                           ("busy", "completed", 24 * 40), (None, "in-progress", 0)]):
            calls.append({"twilio_call_sid": f"CA{start + n:028x}{kind:04x}", "phone_assignment_id": number_id,
                          "client_id": client_row.id, "from_number": "+14155550100", "to_number": "+13125550000",
                          "forwarded_to": client_row.phone, "routed_by": "assignment", "status": status,
                          "dial_status": dial_status, "started_at": now - timedelta(minutes=age)})
    db.session.execute(sa.insert(CallRecord), calls)
    db.session.commit()


def statements_to_render(client, url):
    statements = []

    def count(*args):
        statements.append(args[2])

    sa.event.listen(db.engine, "before_cursor_execute", count)
    try:
        assert client.get(url).status_code == 200
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", count)
    return len(statements)


def test_pages_take_the_same_number_of_queries_for_5_and_200_numbers(admin_client, make_client):
    small, large = make_client(name="Small"), make_client(name="Large", phone="+14155550142")
    seed_numbers_with_calls(small, 5, start=0)
    pages = {
        "numbers": url_for("numbers.numbers"),
        "dashboard": url_for("dashboard.dashboard"),
        "client": url_for("clients.client_detail", client_id=small.id),
        "dashboard partial": url_for("dashboard.dashboard", fragment=True),
    }
    few = {name: statements_to_render(admin_client, url) for name, url in pages.items()}
    seed_numbers_with_calls(large, 195, start=5)
    pages["client"] = url_for("clients.client_detail", client_id=large.id)
    many = {name: statements_to_render(admin_client, url) for name, url in pages.items()}
    assert many == few
    assert db.session.scalar(sa.select(sa.func.count()).select_from(PhoneAssignment)) == 200


def test_test_results_stay_on_the_card_until_it_refreshes_itself(admin_client, assigned):
    shown = soup(press_test(admin_client, assigned)).find(id=f"number-{assigned.id}")
    # Out of the page's poll, so the results are not replaced by the next look for changes...
    assert shown.find("input", {"name": "card"}) is None
    # ...and back to the plain card, rejoining the poll, after a while.
    assert shown["hx-trigger"] == "load delay:30s"
    assert shown["hx-get"] == url_for("numbers.number_card", number_id=assigned.id)
    plain = soup(admin_client.get(shown["hx-get"], headers=HX)).find(id=f"number-{assigned.id}")
    assert plain.find("input", {"name": "card"})["value"] == str(assigned.id) and not plain.select(".check-step")
