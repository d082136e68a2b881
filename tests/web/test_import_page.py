"""The Import page: upload the previous front-end's export, read its dry run, Apply (with the form token), see
what was done."""
import io
import json

import sqlalchemy as sa
from flask import url_for

from phoneapp.extensions import db
from phoneapp.models import AuditEvent, Client, PhoneAssignment
from tests.support.pages import STAFF, form_token, soup, text_of

EXPORT = {
    "clients": [{"id": "ckacme0001", "name": "Acme Plumbing", "phone": "+14155550187", "email": None},
                {"id": "ckbad", "name": "No Phone", "phone": ""}],
    "phoneAssignments": [
        {"twilioSid": "PN" + "a" * 32, "phoneNumber": "+14155550100", "clientId": "ckacme0001",
         "forwardToNumber": None, "isActive": True},
        {"twilioSid": "PN" + "b" * 32, "phoneNumber": "+14155550101", "clientId": "ckbad"},
    ],
}


def upload(client, content, name="export.json"):
    data = {"csrf_token": form_token(client, "numbers.import_form")}
    if content is not None:
        data["file"] = (io.BytesIO(content), name)
    return client.post(url_for("numbers.upload_import"), data=data, content_type="multipart/form-data")


def rows(page):
    return [(row["data-kind"], row["data-action"], text_of(row.find_all("td")[-1]))
            for row in page.select("tr.import-row")]


def counts():
    return tuple(db.session.scalar(sa.select(sa.func.count()).select_from(model))
                 for model in (Client, PhoneAssignment, AuditEvent))


def test_upload_shows_the_dry_run_and_apply_imports_it(app, staff_client, request_context):
    numbers_page = soup(staff_client.get(url_for("numbers.numbers")))
    assert numbers_page.find("a", href=url_for("numbers.import_form")) is not None
    before = counts()

    response = upload(staff_client, json.dumps(EXPORT).encode())
    assert response.status_code == 303
    plan_url = response.location
    page = soup(staff_client.get(plan_url))
    assert rows(page) == [
        ("client", "create", "new client Acme Plumbing, +14155550187"),
        ("client", "refuse", "phone: a phone number is required"),
        ("number", "create", "new number +14155550100 for Acme Plumbing, forwarding to the client's phone; "
                             "Twilio is checked by the next verify"),
        ("number", "refuse", "clientId: client ckbad (client row 2) is refused"),
    ]
    assert "1 to create" in text_of(page.find("span", {"data-kind": "number", "data-action": "create"}))
    assert counts() == before

    apply_form = page.find("form", action=plan_url + "/apply")
    assert staff_client.post(apply_form["action"]).status_code == 400
    assert counts() == before

    response = staff_client.post(apply_form["action"],
                                 data={"csrf_token": apply_form.find("input", {"name": "csrf_token"})["value"]})
    assert response.status_code == 303
    result = soup(staff_client.get(response.location))
    assert [(kind, action) for kind, action, _ in rows(result)] == [
        ("client", "create"), ("client", "refuse"), ("number", "create"), ("number", "refuse")]
    assert "Imported" in text_of(result.find("h1"))
    acme = db.session.scalars(sa.select(Client).where(Client.legacy_id == "ckacme0001")).one()
    number = db.session.scalars(sa.select(PhoneAssignment)).one()
    assert (number.client_id, number.config_state) == (acme.id, "unverified")
    assert db.session.scalar(sa.select(AuditEvent.actor_label).where(AuditEvent.action == "assign")) == STAFF[0]

    again = soup(staff_client.get(plan_url))
    assert [action for _, action, _ in rows(again)] == ["unchanged", "refuse", "unchanged", "refuse"]
    assert again.find("form", action=plan_url + "/apply") is None
    assert "Nothing to apply" in text_of(again)


def test_a_file_that_is_no_export_is_refused_beside_the_field(app, staff_client, request_context):
    before = counts()
    for content, reason in ((b'{"clients": [', "the file is not valid JSON"),
                            (None, "choose the JSON file exported from the previous front-end"),
                            (b'{"numbers": []}', 'expected an object with "clients" and "phoneAssignments"')):
        response = upload(staff_client, content)
        assert response.status_code == 400
        assert reason in text_of(soup(response).find(id="file-error"))
    assert counts() == before


def test_an_upload_that_is_not_kept_is_not_found(app, staff_client, request_context):
    assert staff_client.get(url_for("numbers.import_plan", token="x" * 32)).status_code == 404
    assert staff_client.get(url_for("numbers.import_plan", token="../../etc")).status_code == 404
    assert staff_client.get(url_for("numbers.import_result", token="y" * 32)).status_code == 404
