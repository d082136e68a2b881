"""`numbers import FILE [--apply]`: prints the plan, applies it only when asked, refuses a file that is no export."""
import json

import sqlalchemy as sa

from phoneapp.extensions import db
from phoneapp.models import Client, PhoneAssignment

EXPORT = {
    "clients": [{"id": "ckacme0001", "name": "Acme Plumbing", "phone": "+14155550187", "email": None}],
    "phoneAssignments": [
        {"twilioSid": "PN" + "a" * 32, "phoneNumber": "+14155550100", "clientId": "ckacme0001",
         "forwardToNumber": None, "isActive": True},
        {"twilioSid": "PN" + "b" * 32, "phoneNumber": "+14155550101", "clientId": "ckgone"},
    ],
}


def export_file(tmp_path, content):
    path = tmp_path / "export.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return str(path)


def counts():
    return tuple(db.session.scalar(sa.select(sa.func.count()).select_from(model))
                 for model in (Client, PhoneAssignment))


def test_without_apply_it_prints_the_plan_and_changes_nothing(app, runner, tmp_path):
    result = runner.invoke(args=["numbers", "import", export_file(tmp_path, EXPORT)])
    assert result.exit_code == 0, result.output
    assert "Dry run: nothing was changed" in result.output
    assert "Clients: 1 to create, 0 to change, 0 unchanged, 0 refused." in result.output
    assert "Numbers: 1 to create, 0 to change, 0 unchanged, 1 refused." in result.output
    assert "refused    number row 2    PN" + "b" * 32 + ": clientId: no client ckgone" in result.output
    assert counts() == (0, 0)


def test_apply_applies_and_a_second_run_changes_nothing(app, runner, tmp_path):
    path = export_file(tmp_path, EXPORT)
    result = runner.invoke(args=["numbers", "import", path, "--apply"])
    assert result.exit_code == 0, result.output
    assert "Numbers: 1 created, 0 changed, 0 unchanged, 1 refused." in result.output
    assert counts() == (1, 1)
    updated = db.session.execute(sa.select(PhoneAssignment.updated_at, Client.updated_at).join(Client)).one()
    again = runner.invoke(args=["numbers", "import", path, "--apply"])
    assert "Clients: 0 created, 0 changed, 1 unchanged, 0 refused." in again.output
    assert "Numbers: 0 created, 0 changed, 1 unchanged, 1 refused." in again.output
    db.session.expire_all()
    assert db.session.execute(sa.select(PhoneAssignment.updated_at, Client.updated_at).join(Client)).one() == updated


def test_a_file_that_is_no_export_fails_and_names_why(app, runner, tmp_path):
    result = runner.invoke(args=["numbers", "import", export_file(tmp_path, '{"clients": [}'), "--apply"])
    assert result.exit_code == 1
    assert "the file is not valid JSON" in result.output
    missing = runner.invoke(args=["numbers", "import", str(tmp_path / "nowhere.json")])
    assert missing.exit_code != 0 and "nowhere.json" in missing.output
    assert counts() == (0, 0)
