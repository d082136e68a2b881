"""The login throttle: per address and account, per account across addresses, proxy headers only when trusted,
and the same password-hash work whether the e-mail is known or not."""
import hashlib
import re
import time

import pytest
from bs4 import BeautifulSoup

from phoneapp.extensions import db
from phoneapp.services import users
from tests.support.apps import make_app
from tests.support.pages import ADMIN, STAFF
from tests.support.webhooks import sign, voice_params

# Small limits keep the tests quick: 3 failures per address and account, 7 per account, in a 10-minute window.
LIMITS = {"LOGIN_MAX_FAILURES": "3", "LOGIN_ACCOUNT_MAX_FAILURES": "7", "LOGIN_WINDOW_SECONDS": "10m"}
PER_PAIR, PER_ACCOUNT, WINDOW_MINUTES = 3, 7, 10
TOO_MANY = re.compile(r"Too many attempts; try again in (\d+) minutes?\.")


@pytest.fixture
def throttle_app(tmp_path, migrated_postgres):
    """An app with the small limits and the two users; `make(**environ)` adds settings such as TRUSTED_PROXY_COUNT."""
    made = []

    def make(**environ):
        app = make_app(tmp_path / f"app{len(made)}", **LIMITS, **environ)
        made.append(app)
        with app.app_context():
            users.create_user(ADMIN[0], ADMIN[1], role="admin")
            users.create_user(STAFF[0], STAFF[1], role="staff")
        return app

    yield make
    for app in made:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


class Browser:
    """One browser on one address (REMOTE_ADDR as the server sees it), optionally sending X-Forwarded-For."""

    def __init__(self, app, address="198.51.100.1"):
        self.app, self.address = app, address
        self.client = app.test_client()
        with app.app_context():
            page = self.client.get("/login", environ_base={"REMOTE_ADDR": address})
        self.token = BeautifulSoup(page.data, "html.parser").find("input", {"name": "csrf_token"})["value"]

    def login(self, email, password, forwarded_for=None, address=None):
        headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
        with self.app.app_context():
            return self.client.post("/login", data={"email": email, "password": password, "csrf_token": self.token},
                                    headers=headers, environ_base={"REMOTE_ADDR": address or self.address})


def refused_for_minutes(response):
    """The minutes the login page says to wait, after checking it answered 429 with the form."""
    assert response.status_code == 429, (response.status_code, response.get_data(as_text=True)[:300])
    page = BeautifulSoup(response.data, "html.parser")
    assert page.find("form") is not None and page.find("input", {"name": "email"}) is not None
    match = TOO_MANY.search(" ".join(page.find(role="alert").get_text().split()))
    assert match, page.find(role="alert")
    return int(match.group(1))


def test_rotated_forwarded_for_is_ignored_without_a_trusted_proxy(throttle_app):
    app = throttle_app()
    browser = Browser(app)
    for n in range(PER_PAIR):
        assert browser.login(ADMIN[0], "guess", forwarded_for=f"203.0.113.{n}").status_code == 401
    assert refused_for_minutes(browser.login(ADMIN[0], "guess", forwarded_for="203.0.113.99")) == WINDOW_MINUTES
    # The real peer is throttled, whatever the header says; another peer is not.
    assert Browser(app, "198.51.100.2").login(ADMIN[0], "guess").status_code == 401


def test_one_trusted_proxy_makes_the_last_forwarded_address_the_client(throttle_app):
    app = throttle_app(TRUSTED_PROXY_COUNT="1")
    proxy = Browser(app, "127.0.0.1")
    # The client may prepend anything; the proxy appends the address it saw, and only that one counts.
    for n in range(PER_PAIR):
        assert proxy.login(ADMIN[0], "guess", forwarded_for=f"10.9.9.{n}, 203.0.113.7").status_code == 401
    assert refused_for_minutes(proxy.login(ADMIN[0], "guess", forwarded_for="10.9.9.99, 203.0.113.7"))
    # Another forwarded address is another client, with attempts of its own...
    for _ in range(PER_PAIR):
        assert proxy.login(ADMIN[0], "guess", forwarded_for="203.0.113.8").status_code == 401
    # ...but rotating addresses does not escape the account's own limit.
    for n in range(PER_ACCOUNT - 2 * PER_PAIR):
        assert proxy.login(ADMIN[0], "guess", forwarded_for=f"203.0.113.{20 + n}").status_code == 401
    assert refused_for_minutes(proxy.login(ADMIN[0], "guess", forwarded_for="203.0.113.50"))
    assert proxy.login(STAFF[0], "guess", forwarded_for="203.0.113.50").status_code == 401


def test_the_account_limit_holds_across_addresses(throttle_app):
    app = throttle_app()
    for n in range(PER_ACCOUNT):
        # One failure per address: no address reaches its own limit.
        assert Browser(app, f"198.51.100.{10 + n}").login(ADMIN[0], "guess").status_code == 401
    fresh = Browser(app, "198.51.100.200")
    assert refused_for_minutes(fresh.login(ADMIN[0], "guess")) == WINDOW_MINUTES
    # Even the right password, from an address never seen: the account waits out the window.
    assert refused_for_minutes(fresh.login(*ADMIN)) == WINDOW_MINUTES
    # The account is normalised: case and spaces do not make another one.
    assert refused_for_minutes(fresh.login("  " + ADMIN[0].upper() + " ", "guess"))
    # Other accounts from the same addresses are not affected.
    assert fresh.login(*STAFF).status_code == 303


def test_the_right_password_after_the_limit_waits_until_the_window_has_passed(throttle_app, monkeypatch):
    app = throttle_app()
    browser = Browser(app)
    for _ in range(PER_PAIR):
        assert browser.login(ADMIN[0], "guess").status_code == 401
    assert refused_for_minutes(browser.login(*ADMIN)) == WINDOW_MINUTES
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + (WINDOW_MINUTES - 1) * 60)
    assert refused_for_minutes(browser.login(*ADMIN)) == 1
    monkeypatch.setattr(time, "time", lambda: real_time() + WINDOW_MINUTES * 60 + 1)
    assert browser.login(*ADMIN).status_code == 303


def test_a_successful_login_forgets_that_address_s_failures_not_the_account_s(throttle_app):
    app = throttle_app()
    # Rounds of failures just under the limit, each ended by the right password: more failures from one
    # address than its limit allows, yet the user is never locked out.
    rounds = (PER_ACCOUNT - 1) // (PER_PAIR - 1)
    assert rounds * (PER_PAIR - 1) > PER_PAIR
    for _ in range(rounds):
        browser = Browser(app)
        for _ in range(PER_PAIR - 1):
            assert browser.login(ADMIN[0], "guess").status_code == 401
        assert browser.login(*ADMIN).status_code == 303
    # The account's count (it may be somebody else's guesses from elsewhere) is not forgotten.
    others = Browser(app, "203.0.113.77")
    for _ in range(PER_ACCOUNT - rounds * (PER_PAIR - 1)):
        assert others.login(ADMIN[0], "guess").status_code == 401
    assert refused_for_minutes(others.login(ADMIN[0], "guess"))


def test_the_api_is_not_throttled_with_the_login_form(throttle_app):
    app = throttle_app()
    with app.app_context():
        token = users.issue_token(users.find_user(ADMIN[0]))
    browser = Browser(app)
    for n in range(PER_ACCOUNT):
        assert browser.login(ADMIN[0], "guess", address=f"198.51.100.{30 + n}").status_code == 401
    assert refused_for_minutes(browser.login(*ADMIN))
    with app.app_context():
        response = app.test_client().get("/api/clients", headers={"Authorization": f"Bearer {token}"},
                                         environ_base={"REMOTE_ADDR": browser.address})
    assert response.status_code == 200 and response.is_json


def test_webhook_signatures_hold_behind_a_trusted_proxy_under_a_path(tmp_path, migrated_postgres):
    """Twilio signs PUBLIC_BASE_URL + path; the proxy's X-Forwarded-* change the request's URL, never that."""
    app = make_app(tmp_path, PUBLIC_BASE_URL="https://public.example/calls", TRUSTED_PROXY_COUNT="1")
    with app.app_context():
        params = voice_params()
        response = app.test_client().post(
            "/twilio/voice", data=params, base_url="http://127.0.0.1:8000",
            headers={"X-Twilio-Signature": sign(app, "https://public.example/calls/twilio/voice", params),
                     "X-Forwarded-For": "54.172.60.1", "X-Forwarded-Proto": "https",
                     "X-Forwarded-Host": "public.example", "X-Forwarded-Prefix": "/calls"})
        assert response.status_code == 200, response.data
        db.session.remove()
        db.engine.dispose()


def test_the_limits_are_settings(tmp_path, migrated_postgres):
    app = make_app(tmp_path, LOGIN_MAX_FAILURES="4", LOGIN_ACCOUNT_MAX_FAILURES="12", LOGIN_WINDOW_SECONDS="5m",
                   TRUSTED_PROXY_COUNT="2")
    assert (app.config["LOGIN_MAX_FAILURES"], app.config["LOGIN_ACCOUNT_MAX_FAILURES"],
            app.config["LOGIN_WINDOW_SECONDS"], app.config["TRUSTED_PROXY_COUNT"]) == (4, 12, 300, 2)
    default = make_app(tmp_path / "default")
    assert (default.config["LOGIN_MAX_FAILURES"], default.config["LOGIN_ACCOUNT_MAX_FAILURES"],
            default.config["LOGIN_WINDOW_SECONDS"], default.config["TRUSTED_PROXY_COUNT"]) == (5, 20, 900, 0)
    for made in (app, default):
        with made.app_context():
            db.engine.dispose()


@pytest.fixture
def scrypt_calls(monkeypatch):
    """Every scrypt computation (the password hasher's work), with its cost parameters."""
    calls = []
    real_scrypt = hashlib.scrypt

    def counting_scrypt(password, *, salt, n, r, p, maxmem=0, dklen=64):
        calls.append({"n": n, "r": r, "p": p, "maxmem": maxmem, "dklen": dklen})
        return real_scrypt(password, salt=salt, n=n, r=r, p=p, maxmem=maxmem, dklen=dklen)

    monkeypatch.setattr(hashlib, "scrypt", counting_scrypt)
    return calls


def test_unknown_and_known_e_mails_cost_the_same_hash_work(throttle_app, scrypt_calls):
    app = throttle_app()
    with app.app_context():
        inactive = users.create_user("gone@example.test", "an old password", role="staff")
        inactive.is_active_user = False
        db.session.commit()
    work = {}
    for what, email in (("known", ADMIN[0]), ("unknown", "nobody@example.test"), ("inactive", "gone@example.test")):
        browser = Browser(app, f"198.51.100.{len(work) + 60}")
        scrypt_calls.clear()
        assert browser.login(email, "guess").status_code == 401
        work[what] = list(scrypt_calls)
    assert len(work["known"]) == 1, work
    assert work["unknown"] == work["known"], work
    assert work["inactive"] == work["known"], work


def test_unknown_and_known_e_mails_take_about_as_long(throttle_app):
    """The same work shows as the same time: generous bounds, only to catch a path that skips the hash."""
    app = throttle_app()
    browser = Browser(app)

    def cost(email, address):
        started = time.perf_counter()
        assert browser.login(email, "guess", address=address).status_code == 401
        return time.perf_counter() - started

    known = min(cost(ADMIN[0], f"198.51.100.{70 + n}") for n in range(3))
    unknown = min(cost("nobody@example.test", f"198.51.100.{80 + n}") for n in range(3))
    assert 0.5 < unknown / known < 2, (unknown, known)


def test_throttle_counts_survive_in_redis_for_every_web_process(tmp_path, migrated_postgres, private_redis):
    first = make_app(tmp_path / "first", REDIS_URL=private_redis.url, **LIMITS)
    with first.app_context():
        users.create_user(ADMIN[0], ADMIN[1], role="admin")
    browser = Browser(first)
    for _ in range(PER_PAIR):
        assert browser.login(ADMIN[0], "guess").status_code == 401
    # Another web process on the same Redis (here: a second app) sees the same count.
    second = make_app(tmp_path / "second", REDIS_URL=private_redis.url, **LIMITS)
    with second.app_context():
        users.create_user(ADMIN[0], ADMIN[1], role="admin")
    assert refused_for_minutes(Browser(second).login(*ADMIN)) == WINDOW_MINUTES
    for app in (first, second):
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
