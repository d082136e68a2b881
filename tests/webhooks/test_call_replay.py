"""Each kind of inbound call replayed request by request through the real, signed webhook routes, as Twilio sends
them: the record it ends as, the events kept of it, and what phoneapp answered along the way."""
import csv
import io

import pytest
import sqlalchemy as sa

from phoneapp.domain.call_status import OUTCOMES, outcome_of
from phoneapp.extensions import db
from phoneapp.models import Alert, CallRecord
from tests.support.call_corpus import (
    CORPUS,
    SEQUENCES,
    answer_problem,
    deliver,
    differences,
    event_differences,
    expected_events,
    expected_record,
    new_call,
    read_call,
    requests_of,
    tracking_number,
)
from tests.support.webhooks import setup_routing


@pytest.fixture
def number(app):
    setup_routing(app)
    return tracking_number()


def replay(app, sequence):
    """Deliver every request of `sequence` in order; returns the call and what was wrong with phoneapp's answers."""
    call = new_call()
    requests = requests_of(sequence.steps, call)
    wrong_answers = [problem for request in requests
                     if (problem := answer_problem(request.step, deliver(app, request))) is not None]
    return call, requests, wrong_answers


@pytest.mark.parametrize("sequence", CORPUS, ids=[sequence.name for sequence in CORPUS])
def test_a_call_replayed_in_order_ends_as_expected(app, api, number, sequence):
    call, requests, wrong_answers = replay(app, sequence)
    record = read_call(api, call)
    problems = wrong_answers + differences(record, expected_record(sequence, number))
    problems += event_differences(record["events"], expected_events(requests, call))
    if sequence.expected.ended_by_final_callback is False and record["ended_by"] == "status-callback":
        problems.append("ended_by: 'status-callback', yet Twilio's final status callback never came")
    assert not problems, "\n".join(problems)


def failed_forwards_alert(number):
    return db.session.scalars(sa.select(Alert).where(Alert.kind == "failed_forwards", Alert.resolved_at.is_(None),
                                                     Alert.phone_assignment_id == number.id)).one_or_none()


def test_unanswered_calls_in_a_row_raise_the_alert_a_caller_hanging_up_keeps_it_an_answer_clears_it(app, number):
    for _ in range(3):
        replay(app, SEQUENCES["no answer, caller hangs up at the beep"])
    db.session.refresh(number)
    assert (number.failed_forward_streak, failed_forwards_alert(number) is not None) == (3, True)

    # A caller who gives up while it rings says nothing about whether the target answers.
    replay(app, SEQUENCES["caller hangs up while it rings (leg canceled)"])
    db.session.refresh(number)
    assert (number.failed_forward_streak, failed_forwards_alert(number) is not None) == (3, True)

    replay(app, SEQUENCES["answered"])
    db.session.refresh(number)
    assert (number.failed_forward_streak, failed_forwards_alert(number)) == (0, None)


def test_the_call_log_its_filter_and_the_csv_give_every_corpus_call_the_outcome_its_record_has(
        app, api, number, staff_client):
    """One outcome function in Python and its twin in SQL: the filter lists exactly the calls the badge and the
    CSV name, for the whole corpus at once."""
    sids = {}
    for sequence in CORPUS:
        call, _, _ = replay(app, sequence)
        sids[call.sid] = sequence.expected.outcome
    db.session.expire_all()
    in_python = {record.twilio_call_sid: outcome_of(record) for record in
                 db.session.scalars(sa.select(CallRecord).where(CallRecord.twilio_call_sid.in_(sids)))}
    assert in_python == sids

    export = staff_client.get("/calls/export.csv", buffered=True)
    assert export.status_code == 200
    rows = list(csv.DictReader(io.StringIO(export.get_data(as_text=True))))
    assert {row["twilio_call_sid"]: row["outcome"] for row in rows if row["twilio_call_sid"] in sids} == sids

    for word in OUTCOMES:
        listed = {item["twilio_call_sid"] for item in api.get(
            "/api/call-records", query_string={"outcome": word, "per_page": 200}).get_json()["items"]}
        assert listed & set(sids) == {sid for sid, outcome in sids.items() if outcome == word}, word
