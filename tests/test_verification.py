"""`numbers verify [--fix]`: drift found, reported, fixed with audit rows, and then left alone."""
import sqlalchemy as sa

from phoneapp.extensions import db
from phoneapp.models import Alert, AuditEvent, PhoneAssignment
from phoneapp.sandbox.account import SandboxAccount


def test_verify_reports_drift_then_fix_repairs_it_once(app, runner, make_client):
    account = SandboxAccount.open(app.config["SANDBOX_STATE_PATH"])
    assert runner.invoke(args=["numbers", "sync"]).exit_code == 0
    assert runner.invoke(args=["numbers", "verify", "--fix"]).exit_code == 0
    first, second, third, _ = account.numbers()
    legacy_client = make_client()
    account.update_number(first["sid"], voice_url="https://old-tracker.example/voice")
    account.update_number(second["sid"], voice_url=f"https://calls.example.test/twilio/client-webhook/{legacy_client.id}")
    account.update_number(third["sid"], voice_application_sid="AP" + "1" * 32)

    result = runner.invoke(args=["numbers", "verify"])
    assert result.exit_code == 1 and "3 differ" in result.output
    states = dict(db.session.execute(sa.select(PhoneAssignment.twilio_sid, PhoneAssignment.config_state)).all())
    assert [states[n["sid"]] for n in (first, second, third)] == ["drift"] * 3
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Alert).where(
        Alert.kind == "webhook_drift", Alert.resolved_at.is_(None))) == 3

    result = runner.invoke(args=["numbers", "verify", "--fix"])
    assert result.exit_code == 0 and "3 fixed" in result.output, result.output
    for number in account.numbers():
        assert number["voice_url"] == "https://calls.example.test/twilio/voice"
        assert number["voice_fallback_url"] == "https://calls.example.test/twilio/fallback"
        assert not number["voice_application_sid"]
    fixes = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "fix_webhook")).all()
    assert len(fixes) == 4 + 3
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Alert).where(
        Alert.kind == "webhook_drift", Alert.resolved_at.is_(None))) == 0

    result = runner.invoke(args=["numbers", "verify", "--fix"])
    assert "4 ok, 0 fixed" in result.output
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent).where(
        AuditEvent.action == "fix_webhook")) == 7
