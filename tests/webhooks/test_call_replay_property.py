"""Twilio delivers a call's requests late, twice and out of order, and may lose some: whatever the order, the
duplicates and the losses, a call ends as the same record as the requests that did arrive delivered in order, with
the outcome of the whole call as long as what the outcome rests on arrived; its status never moves backwards.

Each request keeps the moment it reached phoneapp, whatever the order it is written in: that is how webhooks held
in several processes' webhook logs reach the database. A duplicate arrives at the same moment or later.
"""
from dataclasses import replace
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from phoneapp.domain.call_status import TERMINAL_STATUSES, status_rank
from tests.support.call_corpus import (
    CORPUS,
    call_status,
    deliver,
    differences,
    event_differences,
    expected_events,
    new_call,
    read_call,
    requests_of,
    tracking_number,
)
from tests.support.webhooks import setup_routing

# Fixed seeds and no example database: every run tries the same cases, and a failure replays anywhere.
REPLAY_SETTINGS = settings(max_examples=50, deadline=None, derandomize=True, database=None,
                           suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
# Seconds after the original that a duplicate arrives: at once (the same moment), soon, or after an hour of retries.
DUPLICATE_DELAYS = st.one_of(st.just(0), st.integers(1, 3600))


@pytest.fixture
def number(app):
    setup_routing(app)
    return tracking_number()


@pytest.fixture
def in_order():
    """Records of subsets delivered in order, by (sequence, subset): worked out once per test."""
    return {}


@st.composite
def deliveries(draw, sequence):
    """(the steps that arrive, in the corpus' order; [(step name, seconds late)] in the order delivered)."""
    names = [step.name for step in sequence.steps]
    kept = {name for name in names if draw(st.booleans())}
    for group in sequence.essential:
        if not group & kept:
            kept.add(draw(st.sampled_from(sorted(group))))
    kept = tuple(name for name in names if name in kept)
    order = [(name, 0) for name in draw(st.permutations(kept))]
    for _ in range(draw(st.integers(0, 2))):
        original = draw(st.integers(0, len(order) - 1))
        name, late = order[original]
        order.insert(draw(st.integers(original + 1, len(order))), (name, late + draw(DUPLICATE_DELAYS)))
    return kept, order


def replay_in_order(app, api, sequence, kept):
    call = new_call()
    for request in requests_of(sequence.steps, call):
        if request.step.name in kept:
            deliver(app, request)
    return read_call(api, call)


def status_regressions(before, after):
    if before is None:
        return []
    if before in TERMINAL_STATUSES and after != before:
        return [f"status {before!r} became {after!r} after the call had ended"]
    if after is None or status_rank(after) < status_rank(before):
        return [f"status went back from {before!r} to {after!r}"]
    return []


@pytest.mark.parametrize("sequence", CORPUS, ids=[sequence.name for sequence in CORPUS])
def test_any_order_duplicates_and_losses_converge_on_the_in_order_record(app, api, number, in_order, sequence):
    @REPLAY_SETTINGS
    @given(deliveries(sequence))
    def converges(delivery):
        kept, order = delivery
        call = new_call()
        # Numbered as Twilio numbered them: a lost callback leaves a gap, it does not renumber the others.
        requests = {request.step.name: request for request in requests_of(sequence.steps, call)}
        delivered = [replace(requests[name], arrives=requests[name].arrives + timedelta(seconds=late))
                     for name, late in order]
        problems, status = [], None
        for request in delivered:
            deliver(app, request)
            before, status = status, call_status(call.sid)
            problems += [f"after {request.step.name}: {problem}" for problem in status_regressions(before, status)]

        record = read_call(api, call)
        if (sequence.name, kept) not in in_order:
            in_order[sequence.name, kept] = replay_in_order(app, api, sequence, kept)
        reference = in_order[sequence.name, kept]
        problems += differences(record, {key: value for key, value in reference.items() if key != "events"})
        if record["outcome"] != sequence.expected.outcome:
            problems.append(f"outcome {record['outcome']!r}, the whole call's is {sequence.expected.outcome!r}")

        # The same request at the same moment cannot be told from one logged request written twice: it may be
        # kept once.
        distinct = {(request.step.name, request.arrives): request for request in delivered}.values()
        events = sorted(set(record["events"]), key=record["events"].index)
        if not len(distinct) <= len(record["events"]) <= len(delivered):
            problems.append(f"{len(record['events'])} events for {len(delivered)} requests")
        problems += event_differences(events, expected_events(distinct, call))
        assert not problems, "\n".join(problems)

    converges()
