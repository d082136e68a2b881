"""Logins, throttling, redirects after login, API tokens and the user commands."""
import pytest
import sqlalchemy as sa
from bs4 import BeautifulSoup

from phoneapp.extensions import db
from phoneapp.models import ApiToken, AuditEvent, User
from tests.support.pages import ADMIN, login


def test_login_with_right_password_goes_to_dashboard(client, admin):
    response = login(client, *ADMIN)
    assert response.status_code == 303
    assert response.headers["Location"] == "/"


def test_wrong_password_is_refused_with_a_message(client, admin):
    response = login(client, ADMIN[0], "not the password")
    assert response.status_code == 401
    assert "Wrong e-mail or password" in BeautifulSoup(response.data, "html.parser").get_text()
    assert client.get("/numbers").status_code == 302


def test_login_is_throttled_after_repeated_failures(client, admin, app):
    for _ in range(app.config["LOGIN_MAX_FAILURES"]):
        assert login(client, ADMIN[0], "guess").status_code == 401
    response = login(client, *ADMIN)
    assert response.status_code == 429
    assert "Too many attempts; try again in 15 minutes." in response.get_data(as_text=True)
    assert 0 < int(response.headers["Retry-After"]) <= app.config["LOGIN_WINDOW_SECONDS"]


def test_throttle_is_per_account_and_address(client, admin, staff, app):
    for _ in range(app.config["LOGIN_MAX_FAILURES"]):
        login(client, ADMIN[0], "guess")
    from tests.support.pages import STAFF
    assert login(client, *STAFF).status_code == 303


@pytest.mark.parametrize("target, expected", [
    ("/calls", "/calls"),
    ("https://evil.example/phish", "/"),
    ("//evil.example/phish", "/"),
    ("/\\evil.example", "/"),
])
def test_next_after_login_never_leaves_the_site(client, admin, target, expected):
    page = client.get("/login", query_string={"next": target})
    token = BeautifulSoup(page.data, "html.parser").find("input", {"name": "csrf_token"})["value"]
    response = client.post("/login", data={"email": ADMIN[0], "password": ADMIN[1], "csrf_token": token,
                                           "next": target})
    assert response.headers["Location"] == expected


def test_inactive_user_cannot_log_in(client, admin):
    admin.is_active_user = False
    db.session.commit()
    assert login(client, *ADMIN).status_code == 401


def test_session_is_renewed_at_login(client, admin):
    client.get("/login")
    with client.session_transaction() as session:
        session["planted"] = "by an attacker"
    login(client, *ADMIN)
    with client.session_transaction() as session:
        assert "planted" not in session


def test_logout_needs_post_with_csrf(admin_client):
    assert admin_client.get("/logout").status_code == 405
    assert admin_client.post("/logout").status_code == 400
    assert admin_client.get("/numbers").status_code == 200


def test_pages_need_login_and_htmx_gets_a_redirect_header(client):
    response = client.get("/numbers")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    response = client.get("/numbers", headers={"HX-Request": "true"})
    assert response.status_code == 401
    assert response.headers["HX-Redirect"].startswith("/login")


@pytest.mark.parametrize("current_url, expected_next", [
    ("http://localhost/numbers?status=error", "/login?next=/numbers?status%3Derror"),
    ("http://elsewhere.example/phish", "/login"),
    (None, "/login"),
])
def test_expired_login_on_a_polling_partial_returns_to_the_page_not_the_fragment(
        client, current_url, expected_next):
    headers = {"HX-Request": "true"} | ({"HX-Current-URL": current_url} if current_url else {})
    response = client.get("/partials/numbers/changes?card=1", headers=headers)
    assert response.status_code == 401 and response.data == b""
    assert response.headers["HX-Redirect"] == expected_next


def test_user_commands_create_users_and_print_a_token_once(runner):
    result = runner.invoke(args=["users", "create", "Boss@Example.test", "--role", "admin",
                                 "--password", "a long enough password"])
    assert result.exit_code == 0, result.output
    user = db.session.scalars(sa.select(User)).one()
    assert (user.email, user.role) == ("boss@example.test", "admin")
    assert user.password_hash != "a long enough password" and user.check_password("a long enough password")
    event = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "create_user")).one()
    assert event.actor_label == "system" and "password_hash" not in event.after
    result = runner.invoke(args=["users", "token", "boss@example.test"])
    assert result.exit_code == 0
    token = result.output.strip()
    stored = db.session.scalars(sa.select(ApiToken)).one()
    assert stored.token_hash == ApiToken.hash_token(token) and token not in stored.token_hash


@pytest.mark.parametrize("args, message", [
    (["users", "create", "x@example.test", "--password", "short"], "at least 10 characters"),
    (["users", "create", "not-an-email", "--password", "long enough pw"], "not an e-mail address"),
    (["users", "token", "nobody@example.test"], "no user with e-mail"),
])
def test_user_commands_refuse_bad_input(runner, args, message):
    result = runner.invoke(args=args)
    assert result.exit_code != 0
    assert message in result.output


def test_password_is_asked_for_when_not_given(runner):
    result = runner.invoke(args=["users", "create", "ask@example.test"],
                           input="a long enough password\na long enough password\n")
    assert result.exit_code == 0, result.output
