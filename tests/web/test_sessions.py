"""Sessions end for good: logout anywhere, deactivation (and reactivation) and a new password end every session of
the user, saved cookies included; a normal login keeps working."""
import pytest
from flask import url_for
from flask_login.utils import encode_cookie

from phoneapp.extensions import db
from phoneapp.models import User
from phoneapp.services import users
from tests.support.pages import STAFF, form_token, login

pytestmark = pytest.mark.usefixtures("request_context")


def browser(app, account=STAFF):
    """A separate test client (another browser), logged in as `account`."""
    client = app.test_client()
    assert login(client, *account).status_code == 303
    return client


def logged_out(client):
    """The page sends the client to the login form and the API answers 401."""
    page = client.get(url_for("numbers.numbers"))
    api = client.get("/api/clients")
    return (page.status_code == 302 and page.headers["Location"].startswith(url_for("auth.login"))
            and api.status_code == 401)


def logged_in(client):
    return (client.get(url_for("numbers.numbers")).status_code == 200
            and client.get("/api/clients").status_code == 200)


def log_out(client):
    response = client.post(url_for("auth.logout"), data={"csrf_token": form_token(client)})
    assert response.status_code == 303


def saved_session(client):
    return client.get_cookie("session").value


def replayed(app, cookie):
    """A fresh browser carrying a saved session cookie."""
    client = app.test_client()
    client.set_cookie("session", cookie)
    return client


def test_a_login_stays_logged_in_across_requests(app, staff):
    client = browser(app)
    for _ in range(3):
        assert logged_in(client)
    assert client.get(url_for("dashboard.dashboard")).status_code == 200


def test_logout_in_one_browser_ends_the_session_in_every_browser(app, staff):
    home, phone = browser(app), browser(app)
    assert logged_in(home) and logged_in(phone)

    log_out(home)

    assert logged_out(home)
    assert logged_out(phone)


def test_a_session_cookie_saved_before_logout_opens_nothing_after_a_new_login(app, staff):
    client = browser(app)
    saved = saved_session(client)
    log_out(client)

    elsewhere = browser(app)
    assert logged_in(elsewhere)

    assert logged_out(replayed(app, saved))
    assert logged_in(elsewhere)


def test_a_remember_cookie_from_before_logout_opens_nothing(app, staff):
    client = browser(app)
    remembered = encode_cookie(db.session.get(User, staff.id).get_id())
    log_out(client)

    stranger = app.test_client()
    stranger.set_cookie(app.config.get("REMEMBER_COOKIE_NAME", "remember_token"), remembered)
    assert logged_out(stranger)


def test_an_old_cookie_stays_dead_after_the_account_is_reactivated(app, admin_client, staff):
    staff_client = browser(app)
    saved = saved_session(staff_client)

    form = form_token(admin_client, "users.detail", user_id=staff.id)
    assert admin_client.post(url_for("users.deactivate", user_id=staff.id),
                             data={"csrf_token": form}).status_code == 303
    assert logged_out(staff_client)
    assert admin_client.post(url_for("users.activate", user_id=staff.id),
                             data={"csrf_token": form}).status_code == 303
    assert db.session.get(User, staff.id).is_active

    assert logged_out(staff_client)
    assert logged_out(replayed(app, saved))
    assert logged_in(browser(app))


def test_a_new_password_ends_the_sessions_opened_with_the_old_one(app, staff):
    client = browser(app)
    user = db.session.get(User, staff.id)
    user.set_password("a brand new password")
    db.session.commit()

    assert logged_out(client)
    assert logged_in(browser(app, (STAFF[0], "a brand new password")))


def test_ending_sessions_leaves_api_tokens_working(app, staff):
    token = users.issue_token(staff)
    client = browser(app)
    log_out(client)

    response = app.test_client().get("/api/clients", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
