"""The notices on the client page: who is told of which calls, the form that sets it (each bad address, number
or event shown by its field, nothing saved), and the change in the audit trail."""
import pytest
from flask import url_for

from phoneapp.extensions import db
from phoneapp.models import Client
from tests.support.pages import form_token, soup, text_of

pytestmark = pytest.mark.usefixtures("request_context")

GOOD_FORM = {"notify_emails": "owner@acme.test\n desk@acme.test ", "notify_sms": "(415) 555-0166",
             "notify_on": ["missed", "voicemail"]}


def post_notices(browser, client, form):
    token = form_token(browser, "clients.edit_client_notices", client_id=client.id)
    return browser.post(url_for("clients.update_client_notices", client_id=client.id),
                        data={**form, "csrf_token": token})


def stored(client):
    db.session.expire_all()
    row = db.session.get(Client, client.id)
    return row.notify_emails, row.notify_sms, row.notify_on


def test_a_client_without_notices_says_nobody_is_told_and_the_form_suggests_missed_calls_and_voicemails(
        staff_client, make_client):
    client = make_client()
    page = soup(staff_client.get(url_for("clients.client_detail", client_id=client.id)))
    panel = page.find(id="client-notices")
    assert text_of(panel.find(attrs={"data-notices-summary": True})) == "Nobody is told of this client's calls."
    assert panel.find("a", string="Edit notices")["href"] == url_for("clients.edit_client_notices", client_id=client.id)

    form = soup(staff_client.get(url_for("clients.edit_client_notices", client_id=client.id)))
    ticked = [box["value"] for box in form.find_all("input", {"name": "notify_on"}) if box.has_attr("checked")]
    assert ticked == ["missed", "voicemail"]
    assert form.find("input", {"name": "csrf_token"})


def test_good_notices_are_saved_shown_and_audited(staff_client, make_client):
    client = make_client()
    saved = post_notices(staff_client, client, GOOD_FORM)
    assert saved.status_code == 303, saved.get_data(as_text=True)
    assert saved.headers["Location"].endswith(f"/clients/{client.id}#client-notices")
    assert stored(client) == (["owner@acme.test", "desk@acme.test"], ["+14155550166"], ["missed", "voicemail"])

    page = soup(staff_client.get(url_for("clients.client_detail", client_id=client.id)))
    panel = page.find(id="client-notices")
    assert text_of(panel.find(attrs={"data-notices-summary": True})) == (
        "Missed calls and voicemails are told by e-mail and by text, once each.")
    assert text_of(panel.find(attrs={"data-notify-emails": True})) == "owner@acme.test desk@acme.test"
    assert text_of(panel.find(attrs={"data-notify-sms": True})) == "(415) 555-0166"
    changes = text_of(page.find(attrs={"aria-labelledby": "client-changes"}))
    assert "Client updated" in changes and "none → owner@acme.test, desk@acme.test" in changes
    assert page.title.string.startswith(client.name)

    # The form shows the saved notices back; unticking every event stops them.
    form = soup(staff_client.get(url_for("clients.edit_client_notices", client_id=client.id)))
    assert text_of(form.find(id="notices-notify_sms")) == "(415) 555-0166"
    assert post_notices(staff_client, client, {**GOOD_FORM, "notify_on": []}).status_code == 303
    assert stored(client)[2] is None
    summary = soup(staff_client.get(url_for("clients.client_detail", client_id=client.id))).find(
        attrs={"data-notices-summary": True})
    assert text_of(summary) == "No kind of call is chosen, so nobody is told."


@pytest.mark.parametrize("change, field, words", [
    ({"notify_emails": "owner@acme.test\nnot-an-address"}, "notify_emails",
     "line 2: “not-an-address” is not an e-mail"),
    ({"notify_emails": "owner@acme.test, Owner <owner@acme.test>"}, "notify_emails", "line 2:"),
    ({"notify_emails": "owner@acme.test\nOWNER@acme.test"}, "notify_emails", "line 2: listed twice"),
    ({"notify_emails": "\n".join(f"p{n}@acme.test" for n in range(11))}, "notify_emails", "at most 10"),
    ({"notify_sms": "(415) 555-0166\n555"}, "notify_sms", "line 2: too short"),
    ({"notify_sms": "not a phone"}, "notify_sms", "line 1: not a phone number"),
    ({"notify_on": ["missed", "hangup"]}, "notify_on", "unknown event “hangup”"),
])
def test_each_bad_notice_shows_by_its_field_and_nothing_is_saved(staff_client, make_client, change, field, words):
    client = make_client()
    refused = post_notices(staff_client, client, GOOD_FORM | change)
    assert refused.status_code == 422
    page = soup(refused)
    assert words in text_of(page.find(id=f"{field}-error"))
    assert "Nothing was saved" in text_of(page.find(class_="form-error"))
    assert stored(client) == (None, None, None)
    # What was typed stays in the form.
    for name in ("notify_emails", "notify_sms"):
        assert page.find(id=f"notices-{name}").string.strip() == (GOOD_FORM | change)[name].strip()


def test_the_notices_form_needs_a_login(client, make_client):
    acme = make_client()
    response = client.get(url_for("clients.edit_client_notices", client_id=acme.id))
    assert response.status_code == 302 and "/login" in response.headers["Location"]
