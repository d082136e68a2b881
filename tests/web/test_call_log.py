"""The call log's filters, its pagination and the streamed CSV export of the filtered calls."""
import contextvars
import csv
import io
from datetime import datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import sqlalchemy as sa
from flask import url_for
from flask.testing import FlaskClient

from phoneapp.extensions import db
from phoneapp.models import CallRecord
from phoneapp.services import call_log
from phoneapp.web import calls as call_log_views
from tests.support.apps import make_app
from tests.support.pages import HX, soup, text_of

pytestmark = pytest.mark.usefixtures("request_context")

# Eastern time: days start at 05:00 UTC in winter and 04:00 UTC in summer, so UTC days would be caught out.
ZONE = "America/New_York"


@pytest.fixture
def app(tmp_path, migrated_postgres):
    app = make_app(tmp_path, APP_TIMEZONE=ZONE)
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


def call_row(sid, number, started_at, **fields):
    """A call_records row as a dict for a bulk insert: answered, from a DC caller, unless told otherwise."""
    row = {"twilio_call_sid": sid, "phone_assignment_id": number.id, "client_id": number.client_id,
           "from_number": "+12025550143", "to_number": number.phone_number, "forwarded_to": "+14155550187",
           "routed_by": "assignment", "status": "completed", "dial_status": "completed", "duration": 42,
           "is_test": False, "started_at": started_at}
    row.update(fields)
    return row


def insert_calls(rows):
    db.session.execute(sa.insert(CallRecord), rows)
    db.session.commit()


def listed(response):
    """The call sids the call log shows, top to bottom."""
    assert response.status_code == 200
    return [row["data-call-sid"] for row in soup(response).select("#calls-table tbody tr")]


def download(client, url):
    """GET an export with its body read inside the request's own context.

    The suite's client runs each request in a context of its own and would read a streamed body in the test's;
    a body streamed with its request context must be read in the context it started in, as a WSGI server does.
    """
    return client.get(url, buffered=True)


def exported(response):
    """The CSV export's header and rows."""
    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    return rows[0], rows[1:]


def query_of(href):
    parts = urlsplit(href)
    return parts.path, {name: values[0] for name, values in parse_qs(parts.query).items()}


@pytest.fixture
def acme(make_client):
    return make_client()


@pytest.fixture
def brightside(make_client):
    return make_client(name="Brightside Dental", phone="+14155550142")


@pytest.fixture
def log(acme, brightside, make_number):
    """Six calls on two clients' numbers, one a day in early March, two of them test calls."""
    acme_number = make_number(client=acme, friendly_name="Google Ads")
    bright_number = make_number(client=brightside)
    insert_calls([
        call_row("CAb1", bright_number, datetime(2024, 3, 5, 16)),
        call_row("CAa1", acme_number, datetime(2024, 3, 5, 15)),
        call_row("CAa2", acme_number, datetime(2024, 3, 4, 15), dial_status="no-answer", duration=None),
        call_row("CAa3", acme_number, datetime(2024, 3, 3, 15), dial_status="busy", is_test=True,
                 voicemail_url="https://api.twilio.example/Recordings/RE1"),
        call_row("CAb2", bright_number, datetime(2024, 3, 2, 15), is_test=True),
        call_row("CAb3", bright_number, datetime(2024, 3, 1, 15), dial_status="no-answer"),
    ])
    return {"acme": acme_number, "brightside": bright_number}


def test_each_filter_narrows_the_log(admin_client, log, acme, brightside):
    def shown(**args):
        return listed(admin_client.get(url_for("calls.calls", **args)))

    assert shown() == ["CAb1", "CAa1", "CAa2", "CAa3", "CAb2", "CAb3"]
    assert shown(number=log["acme"].id) == ["CAa1", "CAa2", "CAa3"]
    assert shown(client=brightside.id) == ["CAb1", "CAb2", "CAb3"]
    assert shown(outcome="missed") == ["CAa2", "CAb3"]
    assert shown(outcome="voicemail") == ["CAa3"]
    assert shown(tests="include") == shown()
    assert shown(tests="exclude") == ["CAb1", "CAa1", "CAa2", "CAb3"]
    assert shown(tests="only") == ["CAa3", "CAb2"]
    assert shown(date_from="2024-03-03", date_to="2024-03-04") == ["CAa2", "CAa3"]
    assert shown(date_from="2024-03-04") == ["CAb1", "CAa1", "CAa2"]
    assert shown(date_to="2024-03-01") == ["CAb3"]


def test_filters_combine(admin_client, log, acme):
    args = {"client": acme.id, "tests": "exclude", "date_from": "2024-03-04", "date_to": "2024-03-05"}
    assert listed(admin_client.get(url_for("calls.calls", **args))) == ["CAa1", "CAa2"]
    assert listed(admin_client.get(url_for("calls.calls", outcome="answered", **args))) == ["CAa1"]
    assert listed(admin_client.get(url_for("calls.calls", number=log["brightside"].id, **args))) == []
    page = soup(admin_client.get(url_for("calls.calls", number=log["brightside"].id, **args)))
    assert "No calls match these filters" in text_of(page.find(id="calls-table"))


def test_the_form_shows_the_filters_in_use(admin_client, log, acme):
    page = soup(admin_client.get(url_for("calls.calls", client=acme.id, outcome="missed", tests="only",
                                         date_from="2024-03-01", date_to="2024-03-31")))
    form = page.find("form", class_="filters")
    assert form.find("select", {"name": "client"}).find("option", selected=True)["value"] == str(acme.id)
    assert form.find("select", {"name": "outcome"}).find("option", selected=True)["value"] == "missed"
    assert form.find("select", {"name": "tests"}).find("option", selected=True)["value"] == "only"
    assert form.find("input", {"name": "date_from"})["type"] == "date"
    assert form.find("input", {"name": "date_from"})["value"] == "2024-03-01"
    assert form.find("input", {"name": "date_to"})["value"] == "2024-03-31"
    assert page.find(id="filter-problems") is None


def test_days_run_from_local_midnight_to_local_midnight(admin_client, make_number):
    number = make_number()
    insert_calls([call_row(sid, number, started) for sid, started in [
        ("CAwinter-before", datetime(2024, 3, 1, 4, 59, 59)),   # 23:59:59 on Feb 29, Eastern standard time
        ("CAwinter-first", datetime(2024, 3, 1, 5, 0, 0)),      # 00:00 on Mar 1
        ("CAwinter-last", datetime(2024, 3, 2, 4, 59, 59)),     # 23:59:59 on Mar 1
        ("CAwinter-after", datetime(2024, 3, 2, 5, 0, 0)),      # 00:00 on Mar 2
        # Mar 10 springs forward: the day is 23 hours long and ends at 04:00 UTC, not 05:00.
        ("CAdst-first", datetime(2024, 3, 10, 5, 0, 0)),
        ("CAdst-last", datetime(2024, 3, 11, 3, 59, 59)),
        ("CAdst-after", datetime(2024, 3, 11, 4, 0, 0)),
    ]])

    def shown(**args):
        return set(listed(admin_client.get(url_for("calls.calls", **args))))

    assert shown(date_from="2024-03-01", date_to="2024-03-01") == {"CAwinter-first", "CAwinter-last"}
    assert shown(date_to="2024-02-29") == {"CAwinter-before"}
    assert shown(date_from="2024-03-02", date_to="2024-03-09") == {"CAwinter-after"}
    assert shown(date_from="2024-03-10", date_to="2024-03-10") == {"CAdst-first", "CAdst-last"}
    assert shown(date_from="2024-03-11") == {"CAdst-after"}


@pytest.mark.parametrize("name, value, reason", [
    ("number", "abc", "“abc” is not a tracking number"),
    ("number", "99999999999999999999", "is not a tracking number"),
    ("number", "-3", "is not a tracking number"),
    ("number", "4242", "there is no tracking number #4242"),
    ("client", "0", "is not a client"),
    ("client", "4242", "there is no client #4242"),
    ("outcome", "lost", "“lost” is not an outcome"),
    ("tests", "maybe", "is not a test-call choice"),
    ("date_from", "2024-02-30", "“2024-02-30” is not a date"),
    ("date_from", "20240301", "is not a date"),
    ("date_to", "yesterday", "is not a date"),
    ("date_to", "9999-12-31", "is not a date"),
    ("date_from", "0001-01-01\x00", "is not a date"),
])
def test_bad_filter_values_are_ignored_and_said_why(admin_client, log, name, value, reason):
    response = admin_client.get(url_for("calls.calls", **{name: value}))
    assert listed(response) == listed(admin_client.get(url_for("calls.calls")))
    page = soup(response)
    assert page.find(id="filter-problems")
    problem = text_of(page.find(id=f"{name}-error"))
    assert problem.startswith("Ignored:") and reason in problem
    assert "has-error" in page.find(id=f"{name}-error").parent["class"]
    assert name not in query_of(page.find(id="export-calls")["href"])[1]
    partial = admin_client.get(url_for("calls.calls", fragment=True, **{name: value}), headers=HX)
    assert partial.status_code == 200 and listed(partial) == listed(response)


def test_an_end_before_the_start_is_ignored_with_a_clear_reason(admin_client, log):
    response = admin_client.get(url_for("calls.calls", date_from="2024-03-04", date_to="2024-03-02"))
    assert listed(response) == ["CAb1", "CAa1", "CAa2"]
    page = soup(response)
    assert text_of(page.find(id="date_to-error")) == "Ignored: “To” (2024-03-02) is before “From” (2024-03-04)."
    assert page.find("input", {"name": "date_to"})["value"] == "2024-03-02"
    assert page.find(id="date_from-error") is None


def test_pages_links_and_polling_keep_the_filters(admin_client, acme, make_number):
    number = make_number(client=acme)
    other = make_number()
    start = datetime(2024, 6, 1, 12)
    insert_calls([call_row(f"CA{i:032x}", number, start + timedelta(seconds=i)) for i in range(1234)]
                 + [call_row("CAelsewhere", other, start), call_row("CAlater", number, datetime(2024, 6, 3, 12))])
    args = {"client": str(acme.id), "date_from": "2024-06-01", "date_to": "2024-06-02", "tests": "exclude"}
    page = soup(admin_client.get(url_for("calls.calls", **args)))
    assert text_of(page.find(id="calls-count")) == "1,234 calls match these filters"
    assert len(page.select("#calls-table tbody tr")) == call_log.CALLS_PER_PAGE
    assert query_of(page.find("a", rel="next")["href"]) == (url_for("calls.calls"), {**args, "page": "2"})
    assert query_of(page.find(id="calls-table")["hx-get"]) == (url_for("calls.calls", fragment=True), args)
    assert query_of(page.find(id="export-calls")["href"]) == (url_for("calls.export_calls"), args)

    second = soup(admin_client.get(url_for("calls.calls", page=2, **args)))
    assert query_of(second.find("a", rel="prev")["href"]) == (url_for("calls.calls"), {**args, "page": "1"})
    assert second.select_one("#calls-table tbody tr")["data-call-sid"] == f"CA{1233 - 50:032x}"
    last = soup(admin_client.get(url_for("calls.calls", page=25, **args)))
    assert len(last.select("#calls-table tbody tr")) == 1234 - 24 * 50
    assert admin_client.get(url_for("calls.calls", page=26, **args)).status_code == 404

    unfiltered = soup(admin_client.get(url_for("calls.calls")))
    assert text_of(unfiltered.find(id="calls-count")) == "1,236 calls"
    assert unfiltered.find(id="export-calls")["href"] == url_for("calls.export_calls")


def test_a_huge_page_number_is_an_empty_page_not_an_error(admin_client, log):
    assert admin_client.get(url_for("calls.calls", page=10**30)).status_code == 404
    partial = admin_client.get(url_for("calls.calls", fragment=True, page=10**30), headers=HX)
    assert partial.status_code == 200 and listed(partial) == []


def test_export_is_the_filtered_calls_in_log_order(admin_client, log, acme):
    args = {"client": acme.id, "date_from": "2024-03-01", "date_to": "2024-03-31"}
    response = download(admin_client, url_for("calls.export_calls", **args))
    assert response.mimetype == "text/csv" and response.mimetype_params["charset"] == "utf-8"
    assert response.headers["Content-Disposition"] == (
        'attachment; filename="calls-acme-plumbing-2024-03-01-to-2024-03-31.csv"')
    header, rows = exported(response)
    assert header == list(call_log_views.EXPORT_HEADER)
    assert [row[header.index("twilio_call_sid")] for row in rows] == listed(admin_client.get(
        url_for("calls.calls", **args)))
    missed = dict(zip(header, rows[1], strict=True))
    call = db.session.scalars(sa.select(CallRecord).where(CallRecord.twilio_call_sid == "CAa2")).one()
    assert missed == {
        "call_id": str(call.id), "started_at": "2024-03-04T10:00:00-05:00",
        "tracking_number": log["acme"].phone_number, "number_name": "Google Ads", "client": "Acme Plumbing",
        "caller": "+12025550143", "caller_city": "", "caller_state": "", "forwarded_to": "+14155550187",
        "outcome": "missed", "answered_by": "", "route_rule": "",
        "status": "completed", "dial_status": "no-answer", "duration_seconds": "",
        "test": "no", "recording_url": "", "voicemail_url": "", "twilio_call_sid": "CAa2",
    }
    voicemail = dict(zip(header, rows[2], strict=True))
    assert voicemail["outcome"] == "voicemail" and voicemail["test"] == "yes"
    assert voicemail["voicemail_url"] == f"https://calls.example.test/calls/{voicemail['call_id']}/voicemail"

    everything = download(admin_client, url_for("calls.export_calls"))
    assert everything.headers["Content-Disposition"] == 'attachment; filename="calls-all.csv"'
    assert [row[-1] for row in exported(everything)[1]] == ["CAb1", "CAa1", "CAa2", "CAa3", "CAb2", "CAb3"]
    assert [row[-1] for row in exported(download(admin_client, url_for("calls.export_calls", tests="only")))[1]] == [
        "CAa3", "CAb2"]
    summer = download(admin_client, url_for("calls.export_calls", date_from="2024-07-01"))
    assert summer.headers["Content-Disposition"] == 'attachment; filename="calls-from-2024-07-01.csv"'
    assert exported(summer) == (list(call_log_views.EXPORT_HEADER), [])


def test_an_export_is_named_by_every_filter_it_was_made_with(admin_client, log, acme):
    def name(**args):
        disposition = download(admin_client, url_for("calls.export_calls", **args)).headers["Content-Disposition"]
        return disposition.removeprefix('attachment; filename="').removesuffix('"')

    assert name() == "calls-all.csv"
    assert name(outcome="missed") == "calls-missed.csv"
    assert name(outcome="unrouted", tests="exclude") == "calls-unrouted-without-test-calls.csv"
    assert name(outcome="voicemail,missed") == "calls-voicemail-missed.csv"
    number = log["acme"].phone_number.lstrip("+")
    assert name(number=log["acme"].id, tests="only", date_to="2024-03-31") == (
        f"calls-{number}-test-calls-only-until-2024-03-31.csv")
    assert name(client=acme.id, outcome="answered") == "calls-acme-plumbing-answered.csv"


def test_export_times_follow_daylight_saving(admin_client, make_number):
    number = make_number()
    insert_calls([call_row("CAsummer", number, datetime(2024, 7, 4, 16, 30, 5))])
    header, rows = exported(download(admin_client, url_for("calls.export_calls", date_to="2024-07-04")))
    assert rows[0][header.index("started_at")] == "2024-07-04T12:30:05-04:00"


def test_export_keeps_spreadsheets_from_running_formulas(admin_client, make_client, make_number):
    client = make_client(name="=HYPERLINK(\"https://evil.example\",\"Click\")")
    number = make_number(client=client, friendly_name="+SUM(1,2)")
    insert_calls([call_row("CAformula", number, datetime(2024, 3, 1, 15), from_number="=1+1",
                           caller_city="@cmd", caller_state="-2+3"),
                  call_row("CAplain", number, datetime(2024, 3, 1, 14), from_number="+14155550100",
                           caller_city="Tacoma", caller_state="WA")])
    header, rows = exported(download(admin_client, url_for("calls.export_calls")))
    formula, plain = (dict(zip(header, row, strict=True)) for row in rows)
    assert formula["client"] == "'=HYPERLINK(\"https://evil.example\",\"Click\")"
    assert formula["number_name"] == "'+SUM(1,2)"
    assert formula["caller"] == "'=1+1"
    assert (formula["caller_city"], formula["caller_state"]) == ("'@cmd", "'-2+3")
    assert formula["tracking_number"] == number.phone_number and formula["tracking_number"].startswith("+")
    assert plain["caller"] == "+14155550100" and plain["forwarded_to"] == "+14155550187"
    assert (plain["caller_city"], plain["caller_state"]) == ("Tacoma", "WA")


def test_export_with_bad_filters_exports_nothing_and_shows_why(admin_client, log, acme):
    response = download(admin_client, url_for("calls.export_calls", client=acme.id, date_from="2024-02-30"))
    assert response.status_code == 303
    assert query_of(response.headers["Location"]) == (
        url_for("calls.calls"), {"client": str(acme.id), "date_from": "2024-02-30"})
    page = soup(admin_client.get(response.headers["Location"]))
    assert "nothing was exported" in text_of(page.find(id="flashes"))
    assert page.find(id="date_from-error")


def test_export_needs_login(client, log):
    response = client.get(url_for("calls.export_calls"))
    assert response.status_code == 302
    assert response.headers["Location"].startswith(url_for("auth.login"))


def test_export_streams_in_batches(app, admin_client, make_number):
    number = make_number()
    total = 5 * call_log.EXPORT_BATCH_SIZE
    start = datetime(2024, 3, 1, 15)
    # Three calls a second, so batches end inside runs of equal times and the id must break the tie.
    insert_calls([call_row(f"CA{i:032x}", number, start + timedelta(seconds=i // 3)) for i in range(total)])
    url = url_for("calls.export_calls")
    session_cookie = admin_client.get_cookie(app.config["SESSION_COOKIE_NAME"])
    selects = []

    def count_call_selects(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("SELECT") and "call_records" in statement:
            selects.append(statement)

    def read_like_a_server():
        """Request and read the body chunk by chunk in one fresh context, noting the queries run so far."""
        client = FlaskClient(app, app.response_class)
        client.set_cookie(session_cookie.key, session_cookie.value)
        response = client.get(url)
        seen = {"streamed": response.is_streamed, "status": response.status_code,
                "length": response.headers.get("Content-Length"), "after_request": len(selects)}
        chunks = response.iter_encoded()
        seen["header"] = next(chunks)
        seen["after_header"] = len(selects)
        seen["first_batch"] = next(chunks)
        seen["after_first_batch"] = len(selects)
        seen["rest"] = b"".join(chunks)
        response.close()
        return seen

    sa.event.listen(db.engine, "before_cursor_execute", count_call_selects)
    try:
        seen = contextvars.Context().run(read_like_a_server)
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", count_call_selects)
    assert seen["status"] == 200 and seen["streamed"] and seen["length"] is None
    assert seen["after_request"] == seen["after_header"] == 0, "calls were read before the body asked for them"
    assert seen["header"].decode() == ",".join(call_log_views.EXPORT_HEADER) + "\r\n"
    assert seen["after_first_batch"] == 1, "the first rows should need one batch, not the whole export"
    # Five full batches, then one query that finds the end.
    assert len(selects) == total // call_log.EXPORT_BATCH_SIZE + 1
    assert all("LIMIT" in statement.upper() for statement in selects)
    rows = list(csv.reader(io.StringIO((seen["first_batch"] + seen["rest"]).decode())))
    assert len(rows) == total and len(list(csv.reader(io.StringIO(seen["first_batch"].decode())))) == (
        call_log.EXPORT_BATCH_SIZE)
    assert [row[-1] for row in rows] == [f"CA{i:032x}" for i in reversed(range(total))]


@pytest.mark.parametrize("link", ["javascript:alert(document.cookie)", " JavaScript:alert(1)",
                                  "data:text/html,<script>alert(1)</script>", "http://api.twilio.com/r"])
def test_a_stored_link_that_is_not_https_is_never_rendered_as_a_link(admin_client, make_number, link):
    number = make_number()
    insert_calls([call_row("CAx1", number, datetime(2024, 3, 5, 16), recording_url=link, voicemail_url=link)])
    page = soup(admin_client.get(url_for("calls.calls")))
    row = page.select_one("#calls-table tbody tr")
    assert row.find("a", href=lambda href: href and ("script" in href.lower() or href.startswith(("data:", "http:"))))\
        is None
    assert row.find("a", string="Recording") is None
    assert "—" in text_of(row)
