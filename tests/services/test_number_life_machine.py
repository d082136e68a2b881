"""A tracking number's life as a state machine, played through the real app against a model of the facts.

Staff assign, reassign, unassign, switch numbers off and on (the card forms and the JSON API); Twilio rings them
through signed webhooks (answered, busy, no answer, a voicemail left, a call nobody can take); Twilio's voice URL
drifts and a verification points it back; a test starts and a worker finishes it; alerts are acknowledged.

After every step what staff read must agree with the facts (SPEC §3a, §4):
- each number's dot, label and reason, on its card and in the API, is what the facts give now, every reason names
  a fact that is true now, and the card says "testing…" exactly while a test runs (the dot stays as it was);
- the open alerts are exactly those whose cause is still there, and acknowledging one only marks it seen;
- the counts at the top of the numbers page are the cards each status filter shows;
- every figure on the dashboard is the number of things the list it links to shows;
- every call is recorded once with the outcome it had, and the failed-forward streak kept on the number is the
  one its calls give.

The model knows only what the machine did, never what the app computed. Examples are few and short, from fixed
seeds, so a run takes about a minute on SQLite and replays the same steps in CI, on SQLite and on PostgreSQL. There is
no clock to control: every step happens now, and nothing here waits for VERIFY_MAX_AGE or a test's deadline.
"""
from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from html import unescape

import pytest
import sqlalchemy as sa
from bs4 import BeautifulSoup
from hypothesis import HealthCheck, Phase, note, seed, settings
from hypothesis import strategies as st
from hypothesis.internal.conjecture import engine
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from phoneapp.domain.phones import display_phone
from phoneapp.extensions import db
from phoneapp.models import PhoneAssignment
from phoneapp.sandbox.account import SandboxAccount
from phoneapp.services import users
from phoneapp.twilio.public_urls import expected_webhooks
from tests.support.api import ApiClient, page_csrf_token
from tests.support.apps import make_app
from tests.support.jobs import run_queued_jobs
from tests.support.pages import HX, STAFF, login, soup, text_of
from tests.support.webhooks import sign

# Fixed seeds and no example database: CI replays the same steps every time, and a failure replays locally. A few
# short runs rather than one long one: Hypothesis's first ten examples of a run are all new, later ones mostly the
# same steps with one changed, and a minute buys only a few dozen examples. No explain phase: it traces every line
# of every example shrunk after a failure, which made shrinking one take minutes instead of seconds.
MACHINE_SEEDS = (1, 2, 3, 4)
MACHINE_SETTINGS = settings(max_examples=9, stateful_step_count=15, deadline=None, database=None, print_blob=False,
                            report_multiple_bugs=False, phases=(Phase.explicit, Phase.generate, Phase.shrink),
                            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                                   HealthCheck.data_too_large])
SHRINKING_SECONDS = 90

CLIENTS = {"A": ("Acme Plumbing", "+14155550187"), "B": ("Brightside Dental", "+14155550142")}
CALLERS = ("+12025550143", "+13125550178", "+16175550119")
ELSEWHERE = "https://old-tracker.example/voice"
FAILING_STREAK = 3
COLOURS = (("green", "forwarding", "Forwarding"), ("yellow", "pending", "Pending setup"),
           ("red", "error", "Error"), ("grey", "inactive", "Inactive"))
LABEL = {colour: label for colour, _, label in COLOURS}
# Kept on app rows between examples: who is logged in, and the API token they use.
KEPT_TABLES = {"users", "api_tokens"}

# What a list page lists, read from its HTML without building a tree (parsing every page would cost most of a run).
LISTED_ROW = re.compile(r'<(?:article|tr)\b[^>]*\bid="(?:number|call)-\d+"')
CALLS_COUNT = re.compile(r'id="calls-count">\s*([\d,]+)')
ALL_N = re.compile(r"\bAll ([\d,]+)\b")
NUMBERS_API = "/api/phone-assignments?per_page=200"
CALLS_API = "/api/call-records?per_page=200"
NEXT_PAGE = re.compile(r'<a\b[^>]*href="([^"]+)"[^>]*rel="next"')

picks = st.integers(min_value=0, max_value=3)
doors = st.sampled_from(["form", "api"])
dials = st.sampled_from(["busy", "no-answer"])
# Every kind of step, with what it needs; `pick` chooses among the numbers the step can act on.
STEPS = st.one_of(
    st.tuples(st.just("assign"), picks, st.sampled_from(sorted(CLIENTS)), doors),
    st.tuples(st.just("reassign"), picks, doors),
    st.tuples(st.just("unassign"), picks, st.sampled_from(["form", "api", "release"])),
    st.tuples(st.just("deactivate"), picks, doors),
    st.tuples(st.just("reactivate"), picks, doors),
    st.tuples(st.just("drift"), picks),
    st.tuples(st.just("fix"), picks),
    st.tuples(st.just("start test"), picks, st.sampled_from(["answered", "busy", "no-answer"]), doors),
    st.tuples(st.just("finish tests")),
    st.tuples(st.just("call answered"), picks),
    st.tuples(st.just("call not answered"), picks, dials),
    st.tuples(st.just("voicemail left"), picks, dials),
    st.tuples(st.just("unrouted call"), picks),
    st.tuples(st.just("acknowledge"), picks),
)


# -- the model: what the machine did, and what that makes true --------------------------------------


@dataclass
class ModelAlert:
    seen: int  # order of the last time it was raised, for "the newest open error"
    acknowledged: bool = False


@dataclass
class Line:
    """One tracking number as the model knows it."""

    id: int
    phone: str
    sid: str
    name: str
    client: str | None = None
    active: bool = True
    drifted: bool = False  # Twilio's voice URL points elsewhere, and a check has seen it
    failed: int = 0  # real forwards nobody answered, in a row, newest first
    testing: int | None = None  # the running test's id

    @property
    def routable(self):
        return self.active and self.client is not None

    @property
    def target(self):
        return CLIENTS[self.client][1] if self.client else None

    @property
    def cause(self):
        """Why calls to it reach nobody now (the words routing uses), or None."""
        if not self.active:
            return "number is inactive"
        if self.client is None:
            return "number is not assigned to a client"
        return None


@dataclass
class Expected:
    colour: str
    reason: str

    @property
    def label(self):
        return LABEL[self.colour]


@dataclass
class ModelCall:
    line: int
    outcome: str
    is_test: bool = False
    client: str | None = None


@dataclass
class ModelTest:
    line: int
    id: int
    step: str = "queued"


@dataclass
class World:
    lines: list
    alerts: dict = field(default_factory=dict)  # (kind, line index) -> ModelAlert
    calls: dict = field(default_factory=dict)  # CallSid -> ModelCall, a test's live call by its inbound CallSid
    behaviour: dict = field(default_factory=dict)  # target phone -> how it answers a test call
    queue: list = field(default_factory=list)  # ("test", ModelTest) / ("verify", line index), in queue order
    seen: int = 0

    def raise_alert(self, kind, index):
        """One open alert per cause; a repeat makes it the newest (its message is the reason a dot shows)."""
        self.seen += 1
        alert = self.alerts.setdefault((kind, index), ModelAlert(self.seen))
        alert.seen = self.seen

    def resolve(self, kind, index):
        self.alerts.pop((kind, index), None)

    def settle(self):
        """What the facts end on their own: a number that routes again has no "reach nobody" alert (SPEC §4)."""
        for index, line in enumerate(self.lines):
            if line.routable:
                self.resolve("unrouted_call", index)
            if not line.drifted:
                self.resolve("webhook_drift", index)
            if line.failed < FAILING_STREAK:
                self.resolve("failed_forwards", index)

    def expected(self, index):
        """The dot SPEC §4 gives this number now, with a reason naming a fact that is true now."""
        line = self.lines[index]
        if not line.active:
            return Expected("grey", "Switched off by staff")
        if line.drifted:
            return Expected("red", f"Twilio's configuration differs: voice URL is {ELSEWHERE}")
        errors = sorted(((alert.seen, kind) for (kind, i), alert in self.alerts.items() if i == index), reverse=True)
        if errors:
            kind = errors[0][1]
            if kind == "unrouted_call":
                return Expected("red", f"Calls to {display_phone(line.phone)} reach nobody, the caller hears a "
                                       f"message: {line.cause}")
            if kind == "failed_forwards":
                return Expected("red", f"The last {FAILING_STREAK} calls to {line.phone} forwarded to nobody who "
                                       "answered")
        if line.failed >= FAILING_STREAK:
            return Expected("red", f"The last {FAILING_STREAK} forwarded calls were not answered")
        if line.client is None:
            return Expected("yellow", "Not assigned to a client yet")
        return Expected("green", f"Forwarding to {display_phone(line.target)}")


def claims_of(reason):
    """The facts a shown reason states, as (fact, words) pairs the model can check."""
    claims = []
    if "Switched off" in reason or "is inactive" in reason:
        claims.append(("inactive", reason))
    if "not assigned to a client" in reason.lower():
        claims.append(("unassigned", reason))
    if "reach nobody" in reason:
        claims.append(("unroutable", reason))
    if "configuration differs" in reason:
        claims.append(("drifted", reason))
    if "forwarded to nobody who answered" in reason or "forwarded calls were not answered" in reason:
        claims.append(("keeps failing", reason))
    if reason.startswith("Forwarding to "):
        claims.append(("forwards", reason.removeprefix("Forwarding to ")))
    if "Test in progress" in reason or "testing" in reason.lower():
        claims.append(("testing", reason))
    return claims


# -- the machine -------------------------------------------------------------------------------------


class NumberLife(RuleBasedStateMachine):
    """Set up by the test below: `app`, a logged-in staff `browser`, and an `api` client with a token."""

    app = browser = api = csrf = None
    # {(path, fingerprint of what the list is made of): how many it listed}, across examples: the same rows give
    # the same page, so a list is read again only when what it lists has changed.
    lists_seen = {}

    def __init__(self):
        super().__init__()
        self.context = self.app.test_request_context()
        self.context.push()
        self.wipe()
        self.account = SandboxAccount.open(self.app.config["SANDBOX_STATE_PATH"])
        expected = expected_webhooks()
        for number in self.account.numbers():
            # Twilio as the last example left it, pointed back at phoneapp (a verify --fix would do the same).
            if any(number[key] != value for key, value in expected.items()):
                self.account.update_number(number["sid"], **expected)
        for _, phone in CLIENTS.values():
            self.account.set_target_behaviour(phone, None)
        runner = self.app.test_cli_runner()
        assert runner.invoke(args=["numbers", "sync"]).exit_code == 0
        result = runner.invoke(args=["numbers", "verify"])
        assert result.exit_code == 0 and "4 ok" in result.output, result.output
        self.client_ids = {}
        for key, (name, phone) in CLIENTS.items():
            response = self.api.post("/api/clients", {"name": name, "phone": phone})
            assert response.status_code == 201, response.get_data(as_text=True)
            self.client_ids[key] = response.get_json()["id"]
        numbers = self.api.get(NUMBERS_API).get_json()["items"]
        self.world = World([Line(n["id"], n["phone_number"], n["twilio_sid"], n["friendly_name"]) for n in numbers])
        self.call_count = 0
        self.cache = {}

    def teardown(self):
        db.session.remove()
        self.context.pop()

    def wipe(self):
        """Every row of the last example gone, except the staff user and their token."""
        db.session.remove()
        with db.engine.begin() as connection:
            for table in reversed(db.metadata.sorted_tables):
                if table.name not in KEPT_TABLES:
                    connection.execute(table.delete())

    # -- driving the app ----------------------------------------------------------------------------

    def acted(self, what):
        note(what)
        self.cache = {}

    def line(self, pick, where=lambda line: True):
        """The pick-th number (counting round) of those `where` holds for, those with an open alert or a running
        test first: a step then often acts on the number the steps before it left something on."""
        chosen = sorted((index for index, line in enumerate(self.world.lines) if where(line)),
                        key=lambda index: (not self.busy(index), index))
        return chosen[pick % len(chosen)]

    def busy(self, index):
        return self.world.lines[index].testing is not None or any(i == index for _, i in self.world.alerts)

    def any_line(self, where):
        return any(where(line) for line in self.world.lines)

    def htmx_post(self, path, data=None):
        return self.browser.post(path, data=data or {}, headers={**HX, "X-CSRFToken": self.csrf})

    def twilio(self, path, params):
        """A webhook as Twilio sends it: signed for the public URL, path and query string."""
        url = self.app.config["PUBLIC_BASE_URL"] + path
        response = self.browser.post(path, data=params, headers={"X-Twilio-Signature": sign(self.app, url, params)})
        assert response.status_code == 200, (path, response.status_code, response.get_data(as_text=True))
        return ET.fromstring(response.get_data(as_text=True))

    def change(self, index, door, fields):
        """A staff edit of one number through the card's form or the JSON API; the answer shows the new dot."""
        line = self.world.lines[index]
        if door == "form" and set(fields) == {"is_active"}:
            response = self.htmx_post(f"/partials/numbers/{line.id}/active",
                                      {"is_active": "true" if fields["is_active"] else "false"})
        elif door == "form":
            client = fields["client_id"]
            response = self.htmx_post(f"/partials/numbers/{line.id}", {
                "client_id": str(client) if client else "", "forward_to_number": "", "friendly_name": line.name})
        elif door == "release":
            response = self.api.delete(f"/api/phone-assignments/{line.id}")
        else:
            response = self.api.patch(f"/api/phone-assignments/{line.id}", fields)
        assert response.status_code == 200, response.get_data(as_text=True)
        return response

    def after_change(self, index, response, door):
        line = self.world.lines[index]
        if line.routable and line.drifted:
            # Saving a number that now forwards points Twilio back at phoneapp first.
            line.drifted = False
        self.world.settle()
        expected = self.world.expected(index)
        if door == "form":
            shown = card_status(soup(response).find(id=f"number-{line.id}"))
        else:
            status = response.get_json()["status"]
            shown = (status["colour"], status["label"], status["reason"], None)
        assert shown[:3] == (expected.colour, expected.label, expected.reason), (
            f"after saving {line.phone} the answer shows {shown[:3]}, the facts give {expected}")

    # -- the steps ------------------------------------------------------------------------------------

    @initialize(clients=st.tuples(*[st.sampled_from([None, "A", "B"])] * 4))
    def start(self, clients):
        """Some numbers already assigned (through the API), the others waiting: a varied place to start from."""
        for index, client in enumerate(clients):
            if client is not None:
                response = self.change(index, "api", {"client_id": self.client_ids[client]})
                self.world.lines[index].client = client
                self.after_change(index, response, "api")
        self.cache = {}

    # One rule for every kind of step. Hypothesis switches rules off at random per example ("swarm testing"); with
    # the few examples a minute allows, that left most examples with one or two kinds of step, and staff edits
    # seldom met the calls that raise alerts. Each step says what it did: the lines above each step of a failing
    # example.
    @rule(step=STEPS)
    def act(self, step):
        name, *args = step
        getattr(self, name.replace(" ", "_"))(*args)

    def possible(self, where, what):
        """Whether some number allows the step now; a step none allows does nothing (and shrinks away)."""
        if self.any_line(where):
            return True
        note(f"(no number can be {what} now: nothing happens)")
        return False

    def assign(self, pick, client, door):
        if not self.possible(lambda line: line.client is None, "assigned"):
            return
        index = self.line(pick, lambda line: line.client is None)
        self.edit(index, door, f"assign {self.world.lines[index].phone} to client {client}", client=client)

    def reassign(self, pick, door):
        if not self.possible(lambda line: line.client is not None, "reassigned"):
            return
        index = self.line(pick, lambda line: line.client is not None)
        line = self.world.lines[index]
        other = "B" if line.client == "A" else "A"
        self.edit(index, door, f"reassign {line.phone} from {line.client} to {other}", client=other)

    def unassign(self, pick, door):
        if not self.possible(lambda line: line.client is not None, "unassigned"):
            return
        index = self.line(pick, lambda line: line.client is not None)
        line = self.world.lines[index]
        if door == "release":
            # DELETE /api/phone-assignments/<id>: unassigned and switched off at once.
            self.edit(index, door, f"release {line.phone} (DELETE: unassigned and switched off)", client=None,
                      active=False)
        else:
            self.edit(index, door, f"unassign {line.phone}", client=None)

    def deactivate(self, pick, door):
        if not self.possible(lambda line: line.active, "switched off"):
            return
        index = self.line(pick, lambda line: line.active)
        self.edit(index, door, f"deactivate {self.world.lines[index].phone}", active=False)

    def reactivate(self, pick, door):
        if not self.possible(lambda line: not line.active, "switched on"):
            return
        index = self.line(pick, lambda line: not line.active)
        self.edit(index, door, f"reactivate {self.world.lines[index].phone}", active=True)

    def edit(self, index, door, what, **facts):
        """A staff edit through the card's form or the JSON API; the answer must show the dot the facts give."""
        line = self.world.lines[index]
        self.acted(f"{what} by {door}")
        fields = {"client_id": self.client_ids[facts["client"]] if facts["client"] else None} \
            if "client" in facts and door != "release" else {}
        if "active" in facts and door != "release":
            fields["is_active"] = facts["active"]
        response = self.change(index, door, fields)
        line.client = facts.get("client", line.client)
        line.active = facts.get("active", line.active)
        self.after_change(index, response, door)

    def drift(self, pick):
        """Someone points the number's voice URL elsewhere in Twilio; the next check without fixing sees it."""
        if not self.possible(lambda line: not line.drifted, "drifted"):
            return
        index = self.line(pick, lambda line: not line.drifted)
        line = self.world.lines[index]
        self.acted(f"drift: {line.phone}'s voice URL changed in Twilio, then `numbers verify` (no fix)")
        self.account.update_number(line.sid, voice_url=ELSEWHERE)
        result = self.app.test_cli_runner().invoke(args=["numbers", "verify"])
        assert result.exit_code == 1 and "differ" in result.output, result.output
        line.drifted = True
        for i, each in enumerate(self.world.lines):
            if each.drifted:
                self.world.raise_alert("webhook_drift", i)
        self.world.settle()

    def fix(self, pick):
        """Staff ask for a check of the number (API); a worker runs it and points Twilio back."""
        if not self.possible(lambda line: line.drifted, "fixed"):
            return
        index = self.line(pick, lambda line: line.drifted)
        line = self.world.lines[index]
        self.acted(f"fix: verify {line.phone} through the API, then a worker runs what is queued")
        response = self.api.post(f"/api/phone-assignments/{line.id}/verify")
        assert response.status_code == 202, response.get_data(as_text=True)
        self.world.queue.append(("verify", index))
        self.run_worker()

    def start_test(self, pick, answers, door):
        """Test on a card (form) or through the API; the target is told how to answer the live call."""
        if not self.possible(lambda line: line.testing is None, "tested"):
            return
        index = self.line(pick, lambda line: line.testing is None)
        line = self.world.lines[index]
        self.acted(f"start a test of {line.phone} by {door}; its target {line.target} will answer: {answers}")
        if line.target:
            self.account.set_target_behaviour(line.target, answers)
            self.world.behaviour[line.target] = answers
        if door == "form":
            response = self.htmx_post(f"/partials/numbers/{line.id}/test")
            assert response.status_code == 200, response.get_data(as_text=True)
            shown = soup(response).find(id=f"number-{line.id}")
            test_id = int(shown.select_one('[id^="test-call-"]')["id"].removeprefix("test-call-"))
        else:
            response = self.api.post(f"/api/phone-assignments/{line.id}/test-call", {})
            assert response.status_code == 202, response.get_data(as_text=True)
            test_id = response.get_json()["id"]
        line.testing = test_id
        self.world.queue.append(("test", ModelTest(index, test_id)))

    def finish_tests(self):
        """A worker runs the queued tests: the dry check, then a live call through the sandbox."""
        if not self.possible(lambda line: line.testing is not None, "waiting on a test"):
            return
        self.acted("a worker runs the queued tests")
        self.run_worker()

    def call_answered(self, pick):
        self.forwarded_call(pick, "completed")

    def call_not_answered(self, pick, dial):
        self.forwarded_call(pick, dial)

    def voicemail_left(self, pick, dial):
        self.forwarded_call(pick, dial, voicemail=True)

    def forwarded_call(self, pick, dial, voicemail=False):
        """A call to a number that forwards (to any number while none does: then nobody takes it)."""
        forwarding = self.any_line(lambda line: line.routable and not line.drifted)
        index = self.line(pick, lambda line: line.routable and not line.drifted) if forwarding else self.line(pick)
        line = self.world.lines[index]
        if line.drifted:
            what = f"it goes to {ELSEWHERE}: phoneapp never hears of it"
        elif not line.routable:
            what = f"nobody takes it: {line.cause}"
        elif dial == "completed":
            what = "the target answers"
        else:
            what = f"the target is {dial}, the caller " + ("leaves a voicemail" if voicemail else "hangs up")
        self.acted(f"a call to {line.phone}; {what}")
        self.play_call(index, dial, voicemail)

    def unrouted_call(self, pick):
        """A call to a number nobody takes (switched off, or not assigned): the caller hears a message."""
        if not self.possible(lambda line: not line.routable and not line.drifted, "called with nobody to take it"):
            return
        index = self.line(pick, lambda line: not line.routable and not line.drifted)
        self.acted(f"a call to {self.world.lines[index].phone}; nobody takes it: {self.world.lines[index].cause}")
        self.play_call(index, "completed")

    def acknowledge(self, pick):
        """Staff acknowledge an open alert on the alerts page: it is seen, not resolved."""
        waiting = sorted(key for key, alert in self.world.alerts.items() if not alert.acknowledged)
        if not waiting:
            note("(no open alert waits for an acknowledgement: nothing happens)")
            return
        kind, index = waiting[pick % len(waiting)]
        line = self.world.lines[index]
        self.acted(f"acknowledge the {kind} alert of {line.phone}")
        row = next(row for row in open_alert_rows(self.page("/alerts")) if row.key == (kind, line.id))
        response = self.htmx_post(f"/alerts/{row.id}/acknowledge")
        assert response.status_code == 200, response.get_data(as_text=True)
        self.cache = {}
        self.world.alerts[(kind, index)].acknowledged = True

    # -- the worker ---------------------------------------------------------------------------------

    def run_worker(self):
        # One thread: the queued jobs run one after another, in the order they were queued.
        run_queued_jobs(self.app, threads=1)
        for kind, job in self.world.queue:
            if kind == "verify":
                self.world.lines[job].drifted = False
            else:
                self.test_ran(job)
        self.world.queue.clear()
        self.world.settle()

    def test_ran(self, test):
        line = self.world.lines[test.line]
        line.testing = None
        if line.drifted:
            # The dry check reads Twilio's configuration (without fixing it) and stops there.
            self.world.raise_alert("webhook_drift", test.line)
            test.step = "failed"
        elif not line.routable:
            test.step = "failed"  # phoneapp's own answer does not forward: no call is placed
        else:
            test.step = self.world.behaviour.get(line.target, "answered")
        shown = self.api.get(f"/api/test-calls/{test.id}").get_json()
        assert (shown["step"], shown["finished_at"] is not None) == (test.step, True), (
            f"the test of {line.phone} ended {shown['step']}: {shown['detail']}; the facts give {test.step}")
        if test.step != "failed":
            # The live call is recorded, marked as a test, with the outcome the target gave it.
            self.world.calls[shown["inbound_call_sid"]] = ModelCall(
                test.line, "answered" if test.step == "answered" else "missed", is_test=True, client=line.client)

    # -- Twilio -------------------------------------------------------------------------------------

    def next_sid(self):
        self.call_count += 1
        return f"CA{self.call_count:032x}"

    def play_call(self, index, dial, voicemail=False):
        """A call to the number, played as Twilio plays it: voice, the forwarded leg, its result, voicemail, end."""
        line = self.world.lines[index]
        if line.drifted:
            return  # Twilio sends its calls to the other URL: phoneapp never hears of them
        sid, caller = self.next_sid(), CALLERS[self.call_count % len(CALLERS)]
        account_sid = self.app.config["TWILIO_ACCOUNT_SID"]
        base = {"AccountSid": account_sid, "ApiVersion": "2010-04-01", "CallSid": sid, "From": caller,
                "To": line.phone, "Direction": "inbound", "Caller": caller, "Called": line.phone}
        answer = self.twilio("/twilio/voice", {**base, "CallStatus": "ringing"})
        dialled = answer.find("Dial/Number")
        if not line.routable:
            assert dialled is None and answer.find("Say") is not None, ET.tostring(answer)
            self.twilio("/twilio/status", {**base, "CallStatus": "completed", "CallDuration": "9"})
            self.world.calls[sid] = ModelCall(index, "unrouted")
            self.world.raise_alert("unrouted_call", index)
            return
        assert dialled is not None and dialled.text.strip() == line.target, ET.tostring(answer)
        child = f"CA{self.call_count:016x}{'f' * 16}"
        leg = {"AccountSid": account_sid, "ApiVersion": "2010-04-01", "CallSid": child, "ParentCallSid": sid,
               "Direction": "outbound-dial", "From": caller, "To": line.target}
        self.twilio("/twilio/dial-events", {**leg, "CallStatus": "ringing"})
        talk = "0"
        if dial == "completed":
            talk = "42"
            self.twilio("/twilio/dial-events", {**leg, "CallStatus": "in-progress"})
        result = self.twilio("/twilio/dial-status", {**base, "CallStatus": "in-progress", "DialCallStatus": dial,
                                                     "DialCallSid": child, "DialCallDuration": talk})
        if dial == "completed":
            assert result.find("Hangup") is not None and result.find("Record") is None, ET.tostring(result)
            outcome = "answered"
        else:
            assert result.find("Record") is not None, ET.tostring(result)
            outcome = "missed"
            if voicemail:
                recording = f"RE{self.call_count:032x}"
                self.twilio("/twilio/recording?kind=voicemail", {
                    "AccountSid": account_sid, "CallSid": sid, "RecordingSid": recording,
                    "RecordingUrl": f"https://api.twilio.com/2010-04-01/Accounts/{account_sid}/Recordings/{recording}",
                    "RecordingStatus": "completed", "RecordingDuration": "14", "RecordingChannels": "1",
                    "RecordingSource": "RecordVerb"})
                outcome = "voicemail"
        self.twilio("/twilio/status", {**base, "CallStatus": "completed", "CallDuration": str(int(talk) + 20)})
        self.world.calls[sid] = ModelCall(index, outcome, client=line.client)
        if outcome == "answered":
            line.failed = 0
        else:
            line.failed += 1
            if line.failed >= FAILING_STREAK:
                self.world.raise_alert("failed_forwards", index)
        self.world.settle()

    # -- reading what staff see ---------------------------------------------------------------------

    def get(self, path):
        """A page or API answer as staff get it, read once per step (reading must not change what it shows)."""
        if path not in self.cache:
            response = self.browser.get(path)
            assert response.status_code == 200, (path, response.status_code)
            self.cache[path] = response.get_data(as_text=True)
        return self.cache[path]

    def page(self, path):
        key = ("soup", path)
        if key not in self.cache:
            self.cache[key] = BeautifulSoup(self.get(path), "html.parser")
        return self.cache[key]

    def listed(self, path):
        """How many things the list at `path` shows, over all its pages: call rows or number cards."""
        if path.startswith("/numbers"):
            made_of = sorted((number_id, status["key"]) for number_id, status in self.api_statuses().items())
        else:
            made_of = sorted((call["id"], call["outcome"], call["is_test"], call["started_at"][:10])
                             for call in json.loads(self.get(CALLS_API))["items"])
        key = (path, repr(made_of))
        if key in self.lists_seen:
            return self.lists_seen[key]
        rows, stated, seen, first = 0, None, set(), path
        while path and path not in seen:
            seen.add(path)
            html = self.get(path)
            rows += len(LISTED_ROW.findall(html))
            count = CALLS_COUNT.search(html)
            if count is not None and stated is None:
                stated = int(count.group(1).replace(",", ""))
            following = NEXT_PAGE.search(html)
            path = unescape(following.group(1)) if following else None
        if stated is not None:
            assert stated == rows, f"{first} says {stated} calls and lists {rows}"
        self.lists_seen[key] = rows
        return rows

    def api_statuses(self):
        items = json.loads(self.get(NUMBERS_API))["items"]
        return {item["id"]: item["status"] for item in items}

    # -- invariants ---------------------------------------------------------------------------------

    @invariant()
    def pages_agree_with_the_facts(self):
        """Everything below, after every step; the first that fails names what staff would have read wrong."""
        self.calls_are_recorded_as_they_went()
        self.failed_streaks_kept_on_numbers_are_their_calls()
        self.reasons_name_facts_true_now()
        self.dots_are_computed_from_the_facts()
        self.open_alerts_are_the_causes_still_there()
        self.status_counts_are_the_cards_shown()
        self.dashboard_figures_are_the_lists_they_link_to()

    def reasons_name_facts_true_now(self):
        cards = self.page("/numbers")
        statuses = self.api_statuses()
        for line in self.world.lines:
            shown = card_status(cards.find(id=f"number-{line.id}"))
            for where, reason in (("card", shown[2]), ("API", statuses[line.id]["reason"])):
                claims = claims_of(reason)
                assert claims, f"{line.phone}: the {where} gives a reason the model does not know: {reason!r}"
                for fact, words in claims:
                    assert self.holds(line, fact, words), (
                        f"{line.phone}: the {where} says {reason!r}, but it is not true now that it is {fact} "
                        f"({self.describe(line)})")

    def holds(self, line, fact, words):
        if fact == "inactive":
            return not line.active
        if fact == "unassigned":
            return line.client is None
        if fact == "unroutable":
            return not line.routable and (line.cause in words)
        if fact == "drifted":
            return line.drifted
        if fact == "keeps failing":
            return line.failed >= FAILING_STREAK
        if fact == "forwards":
            return line.routable and not line.drifted and words == display_phone(line.target)
        if fact == "testing":
            return line.testing is not None
        raise AssertionError(fact)

    def describe(self, line):
        return (f"client {line.client}, {'active' if line.active else 'switched off'}, "
                f"{'drifted' if line.drifted else 'Twilio pointed here'}, {line.failed} unanswered forwards in a row, "
                f"{'a test running' if line.testing else 'no test'}")

    def dots_are_computed_from_the_facts(self):
        cards = self.page("/numbers")
        statuses = self.api_statuses()
        for index, line in enumerate(self.world.lines):
            expected = self.world.expected(index)
            want = (expected.colour, expected.label, expected.reason)
            colour, label, reason, testing = card_status(cards.find(id=f"number-{line.id}"))
            assert (colour, label, reason) == want, (
                f"{line.phone}'s card shows {(colour, label, reason)}, the facts give {want} ({self.describe(line)})")
            status = statuses[line.id]
            assert (status["colour"], status["label"], status["reason"]) == want, (
                f"{line.phone} in the API: {status}, the facts give {want}")
            assert testing == (line.testing is not None), (
                f"{line.phone}'s card {'says' if testing else 'does not say'} testing…, "
                f"{'a test is' if line.testing else 'no test is'} running")

    def open_alerts_are_the_causes_still_there(self):
        rows = open_alert_rows(self.page("/alerts"))
        by_id = {line.id: (index, line) for index, line in enumerate(self.world.lines)}
        shown = {}
        for row in rows:
            assert row.number_id is not None, f"an open alert no number of the model explains: {row.text}"
            kind, number_id = row.key
            shown[(kind, by_id[number_id][0])] = row
        expected = set(self.world.alerts)
        stale = {f"{kind} of {self.world.lines[index].phone}: {shown[(kind, index)].text}"
                 for kind, index in set(shown) - expected}
        missing = {f"{kind} of {self.world.lines[index].phone}" for kind, index in expected - set(shown)}
        assert not stale, f"open alerts whose cause is gone: {sorted(stale)}"
        assert not missing, f"causes with no open alert: {sorted(missing)}"
        for key, row in shown.items():
            assert row.acknowledged == self.world.alerts[key].acknowledged, (
                f"{row.text}: acknowledged {row.acknowledged}, staff {'did' if not row.acknowledged else 'did not'} "
                "acknowledge it")
        alerts_page = self.page("/alerts")
        heading = text_of(alerts_page.find(id="open-alerts"))
        assert heading == f"Open ({len(rows)})", heading
        badge = alerts_page.select_one(".nav-count")
        assert (int(text_of(badge)) if badge else 0) == len(rows), "the navigation's alert count"
        dashboard = self.page("/")
        panel = dashboard.find(id="open-alerts").find_parent("section")
        assert len(panel.select("li.alert-row")) == len(rows), "the dashboard's open alerts"

    def status_counts_are_the_cards_shown(self):
        page = self.page("/numbers")
        counts = {node["data-colour"]: int(text_of(node)) for node in page.select("#status-counts .count")}
        assert sum(counts.values()) == self.listed("/numbers"), f"counts {counts} beside every card"
        for colour, key, _ in COLOURS:
            shown = self.listed(f"/numbers?status={key}")
            assert counts[colour] == shown, f"{key}: the count says {counts[colour]}, the filter shows {shown} cards"
        tally = dict.fromkeys(LABEL, 0)
        for index in range(len(self.world.lines)):
            tally[self.world.expected(index).colour] += 1
        assert counts == tally, f"counts {counts}, the facts give {tally}"

    def dashboard_figures_are_the_lists_they_link_to(self):
        """Each figure counts what its link opens; a panel beside a figure, and a link saying "All N", too."""
        dashboard = self.page("/")
        figures = {}
        for figure in dashboard.select("[data-figure]"):
            name, value = figure["data-figure"], int(text_of(figure).replace(",", ""))
            href = figure.find_parent("a")["href"]
            figures[href] = (name, value)
            if href.startswith("#"):
                # A figure pointing at a panel of this page: the panel lists as many (shown, and "N more").
                panel = dashboard.find(id=href[1:]).find_parent("section")
                assert value == in_panel(panel), f"dashboard {name} = {value}, its panel lists {in_panel(panel)}"
                for link in panel.select(".panel-head a[href]"):
                    listed = self.listed(link["href"])
                    assert value == listed, (
                        f"dashboard {name} = {value}, its panel's link {link['href']} ({text_of(link)!r}) "
                        f"lists {listed}")
            else:
                listed = self.listed(href)
                assert value == listed, f"dashboard {name} = {value}, its link {href} lists {listed}"
        for panel in dashboard.select("section.panel"):
            for link in panel.select(".panel-head a[href]"):
                if link["href"] in figures:
                    # The panel beside a figure's list names the same things.
                    name, value = figures[link["href"]]
                    assert in_panel(panel) == value, (
                        f"dashboard {name} = {value}, the panel linking to the same list shows {in_panel(panel)}")
        for link in dashboard.select("a[href]"):
            said = ALL_N.search(text_of(link))
            if said and not link["href"].startswith("#"):
                listed = self.listed(link["href"])
                assert int(said.group(1).replace(",", "")) == listed, (
                    f"the dashboard's link {text_of(link)!r} opens {link['href']}, which lists {listed}")

    def calls_are_recorded_as_they_went(self):
        records = json.loads(self.get(CALLS_API))["items"]
        by_sid = {record["twilio_call_sid"]: record for record in records}
        assert len(by_sid) == len(records) == len(self.world.calls), (
            f"{len(records)} call records for {len(self.world.calls)} calls")
        for sid, call in self.world.calls.items():
            record = by_sid[sid]
            line = self.world.lines[call.line]
            got = (record["phone_assignment_id"], record["outcome"], record["is_test"],
                   record["client_id"])
            want = (line.id, call.outcome, call.is_test, self.client_ids.get(call.client))
            assert got == want, f"call {sid} to {line.phone} recorded as {got}, it went {want}"

    def failed_streaks_kept_on_numbers_are_their_calls(self):
        streaks = dict(db.session.execute(sa.select(PhoneAssignment.id, PhoneAssignment.failed_forward_streak)).all())
        db.session.rollback()
        for line in self.world.lines:
            assert streaks[line.id] == min(line.failed, FAILING_STREAK), (
                f"{line.phone} keeps a streak of {streaks[line.id]}; its last forwards give {line.failed}")


# -- reading pages ---------------------------------------------------------------------------------------


def card_status(card):
    """(colour, label, reason, says testing) of a number's card as a reader sees it."""
    assert card is not None, "the card is not on the page"
    badge = card.select_one(".card-head .status")
    colour = next(name.removeprefix("status-") for name in badge["class"] if name.startswith("status-"))
    assert f"status-border-{colour}" in card["class"], card["class"]
    return (colour, text_of(badge.select_one(".status-label")), text_of(card.select_one(".status-line")),
            badge.select_one(".status-testing") is not None)


def in_panel(panel):
    """How many a dashboard panel names: its rows, and the "and N more" under them."""
    more = panel.select_one("p.more")
    return len(panel.select("li.list-row")) + (int(re.search(r"\d+", text_of(more)).group()) if more else 0)


@dataclass
class AlertRow:
    id: int
    kind: str
    number_id: int | None
    acknowledged: bool
    text: str

    @property
    def key(self):
        return self.kind, self.number_id


def open_alert_rows(page):
    section = page.find(id="open-alerts").find_parent("section")
    rows = []
    for row in section.select("tr.alert-row"):
        link = row.select_one('a[href^="/numbers/"]')
        rows.append(AlertRow(
            id=int(row["id"].removeprefix("alert-")),
            kind=text_of(row.select_one(".alert-message .sub")).replace(" ", "_"),
            number_id=int(link["href"].rsplit("/", 1)[1]) if link else None,
            acknowledged=row.select_one(".ack-by") is not None,
            text=text_of(row.select_one(".alert-message"))))
    return rows


# -- the test ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("machine_seed", MACHINE_SEEDS)
def test_a_number_s_life_keeps_every_page_true_to_the_facts(tmp_path, migrated_postgres, machine_seed, monkeypatch):
    # A failing example is shrunk for at most this long (Hypothesis's own limit is five minutes per failure): what
    # is printed then is short enough to read, if not always the shortest.
    monkeypatch.setattr(engine, "MAX_SHRINKING_SECONDS", SHRINKING_SECONDS, raising=False)
    app = make_app(tmp_path)
    with app.app_context():
        staff = users.create_user(*STAFF, role="staff", name="Sam Staff")
        token = users.issue_token(staff)
        browser = app.test_client()
        assert login(browser, *STAFF).status_code == 303
        NumberLife.app, NumberLife.browser, NumberLife.api = app, browser, ApiClient(app.test_client(), token)
        NumberLife.csrf, NumberLife.lists_seen = page_csrf_token(browser), {}
        try:
            run_state_machine_as_test(seed(machine_seed)(NumberLife), settings=MACHINE_SETTINGS)
        finally:
            NumberLife.app = NumberLife.browser = NumberLife.api = NumberLife.csrf = None
            db.session.remove()
            db.engine.dispose()
