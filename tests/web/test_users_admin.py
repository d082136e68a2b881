"""The admin Users pages: who may use them, accounts, roles, deactivation and API tokens."""
import re

import pytest
import sqlalchemy as sa
from flask import url_for

from phoneapp.extensions import db
from phoneapp.models import ApiToken, AuditEvent, User
from phoneapp.services import users
from phoneapp.services.errors import ValidationError
from tests.support.pages import ADMIN, STAFF, form_token, login, soup, text_of

pytestmark = pytest.mark.usefixtures("request_context")

TOKEN_PATTERN = re.compile(rb"pa_[A-Za-z0-9_-]{20,}")
NEW_PASSWORD = "a long enough password"


def audit_events(action):
    return db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)).all()


def count_rows(model):
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def bearer_get(app, token, path="/api/clients"):
    """A fresh client, so no session cookie can be what let the request in."""
    return app.test_client().get(path, headers={"Authorization": f"Bearer {token}"})


def issue_through_page(admin_client, user):
    token = form_token(admin_client, "users.detail", user_id=user.id)
    response = admin_client.post(url_for("users.issue_token", user_id=user.id), data={"csrf_token": token})
    assert response.status_code == 200, response.data
    return response, TOKEN_PATTERN.findall(response.data)


def staff_routes(staff, admin):
    """Every users route with a target: one staff can see, one that would change the admin."""
    admin_token = db.session.scalars(sa.select(ApiToken).where(ApiToken.user_id == admin.id)).one()
    return [
        ("GET", url_for("users.index")),
        ("GET", url_for("users.detail", user_id=admin.id)),
        ("POST", url_for("users.create")),
        ("POST", url_for("users.change_role", user_id=admin.id)),
        ("POST", url_for("users.deactivate", user_id=admin.id)),
        ("POST", url_for("users.activate", user_id=staff.id)),
        ("POST", url_for("users.issue_token", user_id=staff.id)),
        ("POST", url_for("users.revoke_token", user_id=admin.id, token_id=admin_token.id)),
    ]


def test_users_pages_need_login(client, admin):
    for url in (url_for("users.index"), url_for("users.detail", user_id=admin.id)):
        response = client.get(url)
        assert response.status_code == 302
        assert response.headers["Location"].startswith(url_for("auth.login"))


def test_staff_gets_403_on_every_users_route_and_changes_nothing(staff_client, staff, admin):
    users.issue_token(admin)
    token = form_token(staff_client)
    events_before = count_rows(AuditEvent)
    for method, url in staff_routes(staff, admin):
        data = {"csrf_token": token, "email": "new@example.test", "password": NEW_PASSWORD, "role": "admin"}
        response = staff_client.open(url, method=method, data=data if method == "POST" else None)
        assert response.status_code == 403, (method, url)
        assert "Only admins manage users." in text_of(soup(response))
    db.session.expire_all()
    assert count_rows(User) == 2 and count_rows(ApiToken) == 1 and count_rows(AuditEvent) == events_before
    assert db.session.get(User, admin.id).is_admin and db.session.get(User, admin.id).is_active
    assert db.session.scalars(sa.select(ApiToken)).one().revoked_at is None


def test_only_admins_see_the_users_nav_item(app, staff_client, admin):
    nav = soup(staff_client.get(url_for("dashboard.dashboard"))).find("nav", class_="mainnav")
    assert "Users" not in [a.get_text(strip=True) for a in nav.find_all("a")]

    admin_client = app.test_client()
    login(admin_client, *ADMIN)
    nav = soup(admin_client.get(url_for("users.index"))).find("nav", class_="mainnav")
    active = nav.find("a", class_="active")
    assert active.get_text(strip=True) == "Users" and active["href"] == url_for("users.index")


def test_list_shows_role_status_last_login_and_live_tokens_in_one_query(admin_client, admin, staff):
    users.issue_token(staff)
    revoked = users.issue_token(staff)
    users.revoke_token(db.session.scalars(sa.select(ApiToken).where(
        ApiToken.token_hash == ApiToken.hash_token(revoked))).one())
    users.set_active(staff, False)

    page = soup(admin_client.get(url_for("users.index")))
    admin_row, staff_row = text_of(page.find(id=f"user-{admin.id}")), text_of(page.find(id=f"user-{staff.id}"))
    assert ADMIN[0] in admin_row and "(you)" in admin_row and "admin" in admin_row and "active" in admin_row
    assert admin_row.endswith(" 0") and "never" not in admin_row
    assert STAFF[0] in staff_row and "Sam Staff" in staff_row and "inactive" in staff_row and "never" in staff_row
    assert staff_row.endswith(" 1")

    statements = []

    def count(*_args):
        statements.append(1)

    sa.event.listen(db.engine, "before_cursor_execute", count)
    try:
        admin_client.get(url_for("users.index"))
        few = len(statements)
        for n in range(5):
            users.issue_token(users.create_user(f"extra{n}@example.test", NEW_PASSWORD))
        statements.clear()
        admin_client.get(url_for("users.index"))
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", count)
    assert len(statements) == few


def test_admin_creates_a_user_who_can_log_in(app, admin_client):
    token = form_token(admin_client, "users.index")
    response = admin_client.post(url_for("users.create"),
                                 data={"email": " New.Person@Example.test", "name": "New Person", "role": "staff",
                                       "password": NEW_PASSWORD, "csrf_token": token})
    assert response.status_code == 303
    user = users.find_user("new.person@example.test")
    assert (user.name, user.role, user.is_active) == ("New Person", "staff", True)
    assert response.headers["Location"] == url_for("users.detail", user_id=user.id)
    detail = soup(admin_client.get(response.headers["Location"]))
    assert "User new.person@example.test added." in text_of(detail.find(id="flashes"))

    event = audit_events("create_user")[-1]
    assert (event.subject_type, event.subject_id, event.actor_label) == ("User", user.id, ADMIN[0])
    assert event.after == {"email": "new.person@example.test", "name": "New Person", "role": "staff",
                           "is_active": True}
    assert user.password_hash not in str(event.after) and NEW_PASSWORD not in str(event.after)

    assert login(app.test_client(), "new.person@example.test", NEW_PASSWORD).status_code == 303


@pytest.mark.parametrize("change, field, reason", [
    ({"email": ADMIN[0]}, "email", users.EMAIL_TAKEN),
    ({"password": "short"}, "password", f"at least {users.MIN_PASSWORD_LENGTH} characters"),
    ({"role": "owner"}, "role", "must be one of admin, staff"),
])
def test_create_is_refused_with_the_reason_beside_the_field(admin_client, change, field, reason):
    data = {"email": "someone@example.test", "name": "Someone", "role": "staff", "password": NEW_PASSWORD,
            "csrf_token": form_token(admin_client, "users.index"), **change}
    events_before = count_rows(AuditEvent)
    response = admin_client.post(url_for("users.create"), data=data)
    assert response.status_code == 422
    page = soup(response)
    assert text_of(page.find(id=f"{field}-error")) == reason
    assert page.find(class_="field has-error").find(attrs={"name": field})
    assert data["password"].encode() not in response.data
    assert count_rows(User) == 1 and count_rows(AuditEvent) == events_before


def test_role_change_and_deactivation_are_audited(admin_client, staff):
    token = form_token(admin_client, "users.detail", user_id=staff.id)
    response = admin_client.post(url_for("users.change_role", user_id=staff.id),
                                 data={"role": "admin", "csrf_token": token})
    assert response.status_code == 303
    assert response.headers["Location"] == url_for("users.detail", user_id=staff.id)
    assert db.session.get(User, staff.id).role == "admin"
    event = audit_events("change_role")[0]
    assert (event.subject_id, event.before, event.after, event.actor_label) == (
        staff.id, {"role": "staff"}, {"role": "admin"}, ADMIN[0])

    for endpoint, action, active in (("users.deactivate", "deactivate_user", False),
                                     ("users.activate", "activate_user", True)):
        response = admin_client.post(url_for(endpoint, user_id=staff.id), data={"csrf_token": token})
        assert response.status_code == 303
        db.session.expire_all()
        assert db.session.get(User, staff.id).is_active is active
        event = audit_events(action)[0]
        assert (event.subject_id, event.before, event.after) == (staff.id, {"is_active": not active},
                                                                 {"is_active": active})

    history = text_of(soup(admin_client.get(url_for("users.detail", user_id=staff.id))).find(
        id="user-history").parent)
    assert "Role changed" in history and "Deactivated" in history and "Activated" in history


@pytest.mark.parametrize("endpoint, data, field, reason", [
    ("users.change_role", {"role": "staff"}, "role", "you cannot remove your own admin role"),
    ("users.deactivate", {}, "is_active", "you cannot deactivate your own account"),
])
def test_the_last_admin_cannot_demote_or_deactivate_themselves(admin_client, admin, endpoint, data, field, reason):
    token = form_token(admin_client, "users.detail", user_id=admin.id)
    events_before = count_rows(AuditEvent)
    response = admin_client.post(url_for(endpoint, user_id=admin.id), data={"csrf_token": token, **data})
    assert response.status_code == 422
    assert text_of(soup(response).find(id=f"{field}-error")) == reason
    assert "Nothing was changed" in text_of(soup(response).find(class_="form-error"))
    db.session.expire_all()
    assert db.session.get(User, admin.id).is_admin and db.session.get(User, admin.id).is_active
    assert count_rows(AuditEvent) == events_before
    assert admin_client.get(url_for("users.index")).status_code == 200


def test_one_active_admin_always_remains(admin, staff):
    # Outside a request nobody is logged in: only the last-admin rule can refuse.
    with pytest.raises(ValidationError) as refused:
        users.set_role(admin, "staff")
    assert refused.value.details == {"role": "this is the last active admin; make another admin first"}
    with pytest.raises(ValidationError):
        users.set_active(admin, False)
    db.session.rollback()

    users.set_role(staff, "admin")
    users.set_active(admin, False)
    assert not admin.is_active
    with pytest.raises(ValidationError):
        users.set_role(staff, "staff")


def test_another_admin_can_be_demoted_and_deactivated(admin_client, staff):
    users.set_role(staff, "admin")
    token = form_token(admin_client, "users.detail", user_id=staff.id)
    assert admin_client.post(url_for("users.change_role", user_id=staff.id),
                             data={"role": "staff", "csrf_token": token}).status_code == 303
    assert admin_client.post(url_for("users.deactivate", user_id=staff.id),
                             data={"csrf_token": token}).status_code == 303
    db.session.expire_all()
    assert db.session.get(User, staff.id).role == "staff" and not db.session.get(User, staff.id).is_active


def test_issued_token_is_shown_once_stored_hashed_and_works(app, admin_client, staff):
    response, found = issue_through_page(admin_client, staff)
    assert len(found) == 1
    token = found[0].decode()
    assert response.headers["Cache-Control"] == "no-store"
    assert "Location" not in response.headers
    assert "Copy it now, it will not be shown again." in text_of(soup(response))
    with admin_client.session_transaction() as session:
        assert token not in str(dict(session))

    row = db.session.scalars(sa.select(ApiToken).where(ApiToken.user_id == staff.id)).one()
    assert row.token_hash == ApiToken.hash_token(token) and row.prefix == token[:10]
    stored = db.session.execute(sa.select(ApiToken.__table__)).one()
    assert all(token not in str(value) for value in stored)

    event = audit_events("issue_token")[0]
    assert (event.subject_type, event.subject_id) == ("User", staff.id)
    assert event.after == {"token_id": row.id, "token_prefix": row.prefix}
    assert token not in str(event.after)

    assert bearer_get(app, token).status_code == 200
    detail = admin_client.get(url_for("users.detail", user_id=staff.id))
    assert token.encode() not in detail.data and TOKEN_PATTERN.search(detail.data) is None
    listed = text_of(soup(detail).find(id=f"token-{row.id}"))
    assert row.prefix in listed and "live" in listed and "never" not in listed
    assert text_of(soup(admin_client.get(url_for("users.index"))).find(id=f"user-{staff.id}")).endswith(" 1")


def test_revoked_token_gets_401(app, admin_client, staff):
    _, (token,) = issue_through_page(admin_client, staff)
    token = token.decode()
    row = db.session.scalars(sa.select(ApiToken)).one()
    form = form_token(admin_client, "users.detail", user_id=staff.id)
    response = admin_client.post(url_for("users.revoke_token", user_id=staff.id, token_id=row.id),
                                 data={"csrf_token": form})
    assert response.status_code == 303
    assert response.headers["Location"] == url_for("users.detail", user_id=staff.id)
    db.session.expire_all()
    assert db.session.get(ApiToken, row.id).revoked_at is not None
    assert bearer_get(app, token).status_code == 401
    event = audit_events("revoke_token")[0]
    assert event.before == {"token_id": row.id, "token_prefix": row.prefix}
    listed = text_of(soup(admin_client.get(url_for("users.detail", user_id=staff.id))).find(id=f"token-{row.id}"))
    assert "revoked" in listed


def test_a_token_is_revoked_only_through_its_own_user(admin_client, admin, staff):
    users.issue_token(admin)
    row = db.session.scalars(sa.select(ApiToken)).one()
    form = form_token(admin_client, "users.detail", user_id=staff.id)
    response = admin_client.post(url_for("users.revoke_token", user_id=staff.id, token_id=row.id),
                                 data={"csrf_token": form})
    assert response.status_code == 404
    db.session.expire_all()
    assert db.session.get(ApiToken, row.id).revoked_at is None


def test_deactivated_user_is_logged_out_and_their_token_refused(app, admin_client, staff):
    staff_client = app.test_client()
    assert login(staff_client, *STAFF).status_code == 303
    assert staff_client.get(url_for("dashboard.dashboard")).status_code == 200
    token = users.issue_token(staff)
    assert bearer_get(app, token).status_code == 200

    form = form_token(admin_client, "users.detail", user_id=staff.id)
    assert admin_client.post(url_for("users.deactivate", user_id=staff.id),
                             data={"csrf_token": form}).status_code == 303

    response = staff_client.get(url_for("dashboard.dashboard"))
    assert response.status_code == 302 and response.headers["Location"].startswith(url_for("auth.login"))
    assert bearer_get(app, token).status_code == 401

    refused = admin_client.post(url_for("users.issue_token", user_id=staff.id), data={"csrf_token": form})
    assert refused.status_code == 422
    assert "reactivate it first" in text_of(soup(refused).find(id="tokens-error"))
    assert count_rows(ApiToken) == 1


@pytest.mark.parametrize("endpoint", ["users.create", "users.change_role", "users.deactivate",
                                      "users.issue_token"])
def test_posts_without_csrf_token_are_refused(admin_client, staff, endpoint):
    values = {} if endpoint == "users.create" else {"user_id": staff.id}
    events_before = count_rows(AuditEvent)
    response = admin_client.post(url_for(endpoint, **values),
                                 data={"email": "x@example.test", "password": NEW_PASSWORD, "role": "admin"})
    assert response.status_code == 400
    db.session.expire_all()
    assert count_rows(User) == 2 and count_rows(ApiToken) == 0 and count_rows(AuditEvent) == events_before
    assert db.session.get(User, staff.id).role == "staff" and db.session.get(User, staff.id).is_active
