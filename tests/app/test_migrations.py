"""The migrations build the schema the models describe, on SQLite and on PostgreSQL."""
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from phoneapp.extensions import db
from phoneapp.models import SCHEMA_REVISION
from phoneapp.services.webhook_events import schema_is_current


def test_models_and_migrations_agree(app):
    """After `db upgrade` from empty, autogenerate finds nothing left to migrate."""
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diff = compare_metadata(context, db.metadata)
    assert diff == [], f"models and migrations differ: {diff}"


def test_upgrade_downgrade_upgrade(app, runner):
    """Every revision can be undone and redone: deploys roll back cleanly."""
    assert runner.invoke(args=["db", "downgrade", "base"]).exit_code == 0
    with db.engine.connect() as connection:
        assert "call_records" not in db.inspect(connection).get_table_names()
    result = runner.invoke(args=["db", "upgrade"])
    assert result.exit_code == 0, result.output
    with db.engine.connect() as connection:
        assert {"users", "clients", "phone_assignments", "call_records", "audit_events", "alerts"} <= set(
            db.inspect(connection).get_table_names())


def test_the_code_knows_the_last_migration(app, runner):
    """The web processes tell a database not yet migrated by SCHEMA_REVISION, without loading Alembic."""
    assert ScriptDirectory(app.config["MIGRATIONS_DIRECTORY"]).get_heads() == [SCHEMA_REVISION]
    assert schema_is_current(app)
    previous = ScriptDirectory(app.config["MIGRATIONS_DIRECTORY"]).get_revision(SCHEMA_REVISION).down_revision
    assert runner.invoke(args=["db", "downgrade", previous]).exit_code == 0
    assert not schema_is_current(app)
    assert runner.invoke(args=["db", "downgrade", "base"]).exit_code == 0
    assert not schema_is_current(app)
    assert runner.invoke(args=["db", "upgrade"]).exit_code == 0
    assert schema_is_current(app)
