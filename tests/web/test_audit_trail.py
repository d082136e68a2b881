"""The audit trail names each action one way, in sentence case, on every page that shows it."""
import ast

import pytest
from flask import url_for

from phoneapp.extensions import db
from phoneapp.services import audit
from phoneapp.services.audit import record_audit
from tests.support.pages import soup, text_of
from tests.support.paths import ROOT

pytestmark = pytest.mark.usefixtures("request_context")


def shown_labels(page):
    return [text_of(badge) for badge in soup(page).select(".timeline .badge-action")]


def test_a_number_page_shows_its_actions_in_sentence_case(admin_client, admin, make_number):
    number = make_number()
    for action in ("assign", "change_forward_target", "fix_webhook", "deactivate", "activate", "reassign",
                   "unassign", "rename"):
        record_audit(action, number, before={}, after={}, actor=admin)
    db.session.commit()

    page = admin_client.get(url_for("numbers.number_detail", number_id=number.id))

    assert shown_labels(page) == ["Renamed", "Unassigned", "Reassigned", "Activated", "Deactivated",
                                  "Webhooks set to phoneapp", "Forward target changed", "Assigned"]


def test_a_user_page_shows_its_actions_in_sentence_case(admin_client, admin, staff):
    for action in ("create_user", "change_role", "issue_token", "revoke_token", "deactivate_user", "activate_user"):
        record_audit(action, staff, actor=admin)
    db.session.commit()

    page = admin_client.get(url_for("users.detail", user_id=staff.id))

    # The last one is the staff fixture's own creation.
    assert shown_labels(page) == ["Activated", "Deactivated", "API token revoked", "API token issued",
                                  "Role changed", "User created", "User created"]


def test_an_action_without_a_label_still_reads_in_sentence_case(admin_client, admin, make_number):
    number = make_number()
    record_audit("merge_into_other_number", number, actor=admin)
    db.session.commit()

    page = admin_client.get(url_for("numbers.number_detail", number_id=number.id))

    assert shown_labels(page) == ["Merge into other number"]


def test_the_stylesheet_leaves_the_labels_as_written(client):
    """`text-transform: capitalize` made "fix webhook" read "Fix Webhook" beside "Assign"."""
    css = client.get("/static/app.css").get_data(as_text=True)
    rules = [rule for rule in css.split("}") if ".badge-action" in rule.split("{")[0]]
    assert rules and not any("text-transform" in rule for rule in rules)


def recorded_actions():
    """Every action name the code passes to record_audit, found in its source."""
    actions = set()
    for path in (ROOT / "phoneapp").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for function in ast.walk(tree):
            if not isinstance(function, ast.FunctionDef):
                continue
            for call in ast.walk(function):
                if not (isinstance(call, ast.Call) and getattr(call.func, "id", None) == "record_audit"
                        and call.args):
                    continue
                argument = call.args[0]
                sources = [argument]
                if isinstance(argument, ast.Name):
                    # `action = "assign" if ... else ...` earlier in the same function
                    sources = [node.value for node in ast.walk(function) if isinstance(node, ast.Assign)
                               and any(getattr(target, "id", None) == argument.id for target in node.targets)]
                for source in sources:
                    actions.update(possible_strings(source))
    return actions


def possible_strings(node):
    """The strings an expression can be: a literal, or either side of `a if test else b`."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    if isinstance(node, ast.IfExp):
        return possible_strings(node.body) | possible_strings(node.orelse)
    return set()


def test_every_recorded_action_has_one_label_in_sentence_case():
    actions = recorded_actions()
    assert {"assign", "fix_webhook", "create_user", "activate_user"} <= actions, actions
    assert actions - set(audit.ACTION_LABELS) == set()
    for action, label in audit.ACTION_LABELS.items():
        assert label[0].isupper() and "_" not in label, (action, label)
        assert label[1:] == label[1:].lower() or label.startswith("API "), (action, label)
