"""The call detail page: who called, how the call was routed, each leg, the recording and voicemail played through
phoneapp, notes and tags, and the timeline of every callback; live while the call goes on."""
import pytest
import sqlalchemy as sa

from phoneapp.extensions import db
from phoneapp.models import CallEvent, CallRecord
from phoneapp.services.simulator import place_simulated_call
from tests.support.pages import HX, form_token, soup, text_of
from tests.support.webhooks import CALLER, post_signed, setup_routing, voice_params

CALL_SID = "CA" + "c3" * 16
LEG_SID = "CA" + "d4" * 16
ACME_PHONE = "+14155550187"


def one_call(sid):
    db.session.expire_all()
    return db.session.scalars(sa.select(CallRecord).where(CallRecord.twilio_call_sid == sid)).one()


def leg_callback(sequence_number, status, **extra):
    return {"AccountSid": "AC" + "0" * 32, "CallSid": LEG_SID, "ParentCallSid": CALL_SID, "CallStatus": status,
            "Direction": "outbound-dial", "From": CALLER, "To": ACME_PHONE, "SequenceNumber": str(sequence_number),
            **extra}


@pytest.fixture
def ringing_call(app):
    """A call to TRACKING (forwarded to Acme) that Twilio has only just handed to phoneapp."""
    setup_routing(app)
    assert post_signed(app, "/twilio/voice", voice_params(call_sid=CALL_SID, CallerName="JANE ROE")).status_code == 200
    return one_call(CALL_SID)


@pytest.fixture
def recorded_calls(app, assigned):
    """In the sandbox: an answered call with RECORD_CALLS on, and a busy one that left a voicemail."""
    app.config["RECORD_CALLS"] = True
    answered = place_simulated_call(assigned.phone_number, outcome="answered", from_number="+12025550143",
                                    background=False, pace=0)
    busy = place_simulated_call(assigned.phone_number, outcome="busy", from_number="+13125550178",
                                background=False, pace=0)
    return one_call(answered.call_sid), one_call(busy.call_sid)


def test_the_page_tells_the_whole_call(staff_client, recorded_calls):
    recorded, _ = recorded_calls
    page = soup(staff_client.get(f"/calls/{recorded.id}"))
    facts = text_of(page.find(id="call-live"))
    assert "(202) 555-0143" in facts and "Acme Plumbing" in facts and "San Francisco, CA, US" in facts
    assert page.select_one("#call-outcome .badge-outcome").get_text(strip=True) == "answered"
    rule = next(row for row in page.select("#call-live dl div") if row.dt.get_text(strip=True) == "Rule")
    assert rule.dd.get_text(strip=True) == "open"
    legs = page.select("#legs tbody tr")
    assert len(legs) == 1
    assert text_of(legs[0].select_one('[data-label="Target"]')) == "(415) 555-0187"
    assert text_of(legs[0].select_one('[data-label="Status"]')).startswith("completed")
    assert text_of(legs[0].select_one('[data-label="Duration"]')) == "0:42"
    audio = page.select_one("#media audio")
    assert audio["src"] == f"/calls/{recorded.id}/recording" and audio["preload"] == "metadata"
    assert audio.has_attr("controls")
    kept = db.session.scalars(sa.select(CallEvent).where(CallEvent.call_sid == recorded.twilio_call_sid)).all()
    items = page.select("#call-timeline li.timeline-item")
    assert len(items) == len(kept) > 4
    assert [item["data-kind"] for item in items][0] == "voice"
    assert all(item.find("details") for item in items)
    # The call is over: nothing on the page keeps asking.
    assert not page.find(id="call-live").has_attr("hx-trigger")


def test_a_voicemail_is_played_in_the_page(staff_client, recorded_calls):
    _, busy = recorded_calls
    page = soup(staff_client.get(f"/calls/{busy.id}"))
    assert page.select_one("#call-outcome .badge-outcome").get_text(strip=True) == "voicemail"
    audio = page.select_one("#media audio#call-voicemail")
    assert audio["src"] == f"/calls/{busy.id}/voicemail"
    assert page.select_one("#call-recording") is None


def test_a_live_call_is_followed_until_it_ends(app, staff_client, ringing_call):
    page = soup(staff_client.get(f"/calls/{ringing_call.id}"))
    live = page.find(id="call-live")
    assert live["hx-get"] == f"/partials/calls/{ringing_call.id}" and "every" in live["hx-trigger"]
    assert "JANE ROE" in text_of(live)

    post_signed(app, "/twilio/dial-events", leg_callback(0, "ringing"))
    for headers in (HX, {}):
        fragment = staff_client.get(f"/partials/calls/{ringing_call.id}", headers=headers)
        assert fragment.status_code == 200
        part = soup(fragment)
        assert part.find(id="call-live").has_attr("hx-trigger")
        assert part.find(id="call-timeline")["hx-swap-oob"] == "true"
        assert len(part.select("#call-timeline li.timeline-item")) == 2
        assert text_of(part.select_one('#legs [data-label="Target"]')) == "(415) 555-0187"

    final = dict(voice_params(call_sid=CALL_SID, CallStatus="completed", CallDuration="3"), SequenceNumber="0")
    post_signed(app, "/twilio/status", final)
    part = soup(staff_client.get(f"/partials/calls/{ringing_call.id}", headers=HX))
    assert not part.find(id="call-live").has_attr("hx-trigger")
    assert part.select_one("#call-outcome .badge-outcome").get_text(strip=True) != "in progress"


def test_repeats_and_late_callbacks_are_marked(app, staff_client, ringing_call):
    for number, status in [(0, "initiated"), (2, "in-progress"), (1, "ringing"), (2, "in-progress")]:
        post_signed(app, "/twilio/dial-events", leg_callback(number, status))
    items = soup(staff_client.get(f"/calls/{ringing_call.id}")).select("#call-timeline li.timeline-item")
    assert [item["data-sequence"] for item in items] == ["", "0", "2", "1", "2"]
    assert [item.has_attr("data-out-of-order") for item in items] == [False, False, False, True, False]
    assert [item.has_attr("data-repeat") for item in items] == [False, False, False, False, True]
    assert "out of order" in text_of(items[3]) and "repeat" in text_of(items[4])


def test_notes_and_tags_are_saved_and_shown_as_chips(app, staff_client, ringing_call, request_context):
    token = form_token(staff_client, "calls.call_detail", call_id=ringing_call.id)
    form = {"csrf_token": token, "notes": "Asked for a quote.", "tags": "Lead, boiler  lead"}
    response = staff_client.post(f"/calls/{ringing_call.id}/notes", data=form)
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/calls/{ringing_call.id}#notes")
    page = soup(staff_client.get(f"/calls/{ringing_call.id}"))
    assert [chip.get_text(strip=True) for chip in page.select("#notes .tag-chip")] == ["lead", "boiler"]
    assert "Asked for a quote." in text_of(page.find(id="notes"))
    assert page.find(id="call-tags")["value"] == "lead boiler"
    assert one_call(CALL_SID).tags == ["lead", "boiler"]


@pytest.mark.parametrize("notes, tags, field", [
    ("fine", "lead sp@m", "tags"),
    ("fine", " ".join(f"t{n}" for n in range(21)), "tags"),
    ("x" * 5001, "lead", "notes"),
], ids=["a tag with a symbol", "21 tags", "notes too long"])
def test_refused_notes_or_tags_say_why_beside_the_field(staff_client, ringing_call, request_context, notes, tags,
                                                        field):
    token = form_token(staff_client, "calls.call_detail", call_id=ringing_call.id)
    response = staff_client.post(f"/calls/{ringing_call.id}/notes",
                                 data={"csrf_token": token, "notes": notes, "tags": tags})
    assert response.status_code == 400
    page = soup(response)
    assert page.find(id=f"{field}-error").get_text(strip=True)
    assert page.find(id=f"call-{field}")["aria-invalid"] == "true"
    assert page.find(id="call-tags")["value"] == tags
    record = one_call(CALL_SID)
    assert (record.notes, record.tags) == ("", None)


def test_the_form_needs_its_csrf_token(staff_client, ringing_call):
    response = staff_client.post(f"/calls/{ringing_call.id}/notes", data={"notes": "x", "tags": "lead"})
    assert response.status_code == 400
    assert one_call(CALL_SID).notes == ""


def test_anonymous_visitors_are_sent_to_log_in(app, ringing_call):
    for path in (f"/calls/{ringing_call.id}", f"/partials/calls/{ringing_call.id}"):
        response = app.test_client().get(path)
        assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_unknown_calls_are_404(staff_client):
    assert staff_client.get("/calls/424242").status_code == 404
    assert staff_client.get("/partials/calls/424242", headers=HX).status_code == 404


def test_every_list_of_calls_links_each_call_to_its_page(staff_client, recorded_calls):
    recorded, busy = recorded_calls
    pages = ["/calls", "/partials/calls", "/", "/partials/recent-calls", f"/numbers/{recorded.phone_assignment_id}",
             f"/clients/{recorded.client_id}"]
    for path in pages:
        links = {a["href"] for a in soup(staff_client.get(path)).select("a[href]")}
        assert {f"/calls/{recorded.id}", f"/calls/{busy.id}"} <= links, path
    failed = {a["href"] for a in soup(staff_client.get("/partials/dashboard")).select("a[href]")}
    assert f"/calls/{busy.id}" in failed
