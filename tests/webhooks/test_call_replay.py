"""Each kind of inbound call replayed request by request through the real, signed webhook routes, as Twilio sends
them: the record it ends as, the events kept of it, and what phoneapp answered along the way."""
import pytest
import sqlalchemy as sa

from phoneapp.extensions import db
from phoneapp.models import Alert
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
