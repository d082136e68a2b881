"""background jobs, test calls, health checks, alert notices

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 19:41:55.513936

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('health_checks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('component', sa.String(length=20), nullable=False),
    sa.Column('ok', sa.Boolean(), nullable=False),
    sa.Column('latency_ms', sa.Double(), nullable=True),
    sa.Column('detail', sa.String(length=500), nullable=False),
    sa.Column('checked_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_health_checks'))
    )
    with op.batch_alter_table('health_checks', schema=None) as batch_op:
        batch_op.create_index('ix_health_checks_component_checked', ['component', 'checked_at'], unique=False)

    op.create_table('job_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=60), nullable=False),
    sa.Column('args', sa.JSON(), nullable=False),
    sa.Column('queue', sa.String(length=10), nullable=False),
    sa.Column('period_key', sa.BigInteger(), nullable=True),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('max_attempts', sa.Integer(), nullable=False),
    sa.Column('timeout_seconds', sa.Integer(), nullable=False),
    sa.Column('run_after', sa.DateTime(), nullable=False),
    sa.Column('worker', sa.String(length=120), nullable=True),
    sa.Column('summary', sa.String(length=500), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('enqueued_at', sa.DateTime(), nullable=False),
    sa.Column('started_at', sa.DateTime(), nullable=True),
    sa.Column('finished_at', sa.DateTime(), nullable=True),
    sa.CheckConstraint("status in ('queued', 'running', 'retrying', 'succeeded', 'failed')", name=op.f('ck_job_runs_status')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_job_runs')),
    sa.UniqueConstraint('name', 'period_key', name='uq_job_runs_name_period')
    )
    with op.batch_alter_table('job_runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_job_runs_enqueued_at'), ['enqueued_at'], unique=False)
        batch_op.create_index('ix_job_runs_status_run_after', ['status', 'run_after'], unique=False)

    op.create_table('worker_heartbeats',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('mode', sa.String(length=10), nullable=False),
    sa.Column('started_at', sa.DateTime(), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_worker_heartbeats')),
    sa.UniqueConstraint('name', name=op.f('uq_worker_heartbeats_name'))
    )
    with op.batch_alter_table('worker_heartbeats', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_worker_heartbeats_last_seen_at'), ['last_seen_at'], unique=False)

    op.create_table('imported_monitor_alerts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('sid', sa.String(length=34), nullable=False),
    sa.Column('error_code', sa.String(length=10), nullable=False),
    sa.Column('phone_assignment_id', sa.Integer(), nullable=True),
    sa.Column('alert_created_at', sa.DateTime(), nullable=False),
    sa.Column('imported_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['phone_assignment_id'], ['phone_assignments.id'], name=op.f('fk_imported_monitor_alerts_phone_assignment_id_phone_assignments'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_imported_monitor_alerts')),
    sa.UniqueConstraint('sid', name=op.f('uq_imported_monitor_alerts_sid'))
    )
    with op.batch_alter_table('imported_monitor_alerts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_imported_monitor_alerts_imported_at'), ['imported_at'], unique=False)

    op.create_table('test_calls',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('phone_assignment_id', sa.Integer(), nullable=False),
    sa.Column('requested_by_id', sa.Integer(), nullable=True),
    sa.Column('live', sa.Boolean(), nullable=False),
    sa.Column('step', sa.String(length=20), nullable=False),
    sa.Column('result', sa.String(length=10), nullable=True),
    sa.Column('detail', sa.String(length=500), nullable=False),
    sa.Column('steps', sa.JSON(), nullable=False),
    sa.Column('call_sid', sa.String(length=34), nullable=True),
    sa.Column('inbound_call_sid', sa.String(length=34), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('deadline_at', sa.DateTime(), nullable=False),
    sa.Column('finished_at', sa.DateTime(), nullable=True),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['phone_assignment_id'], ['phone_assignments.id'], name=op.f('fk_test_calls_phone_assignment_id_phone_assignments'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['requested_by_id'], ['users.id'], name=op.f('fk_test_calls_requested_by_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_test_calls'))
    )
    with op.batch_alter_table('test_calls', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_test_calls_call_sid'), ['call_sid'], unique=False)
        batch_op.create_index(batch_op.f('ix_test_calls_finished_at'), ['finished_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_test_calls_inbound_call_sid'), ['inbound_call_sid'], unique=False)
        batch_op.create_index(batch_op.f('ix_test_calls_phone_assignment_id'), ['phone_assignment_id'], unique=False)

    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('notify_claimed_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('notified_open_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('notified_resolved_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('notify_attempts', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('notify_detail', sa.String(length=500), nullable=True))

    with op.batch_alter_table('phone_assignments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('verify_queued_at', sa.DateTime(), nullable=True))


    owed = ("severity = 'error' AND (notified_open_at IS NULL OR "
            "(resolved_at IS NOT NULL AND notified_resolved_at IS NULL))")
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.create_index('ix_alerts_notice_owed', ['id'], unique=False,
                              sqlite_where=sa.text(owed), postgresql_where=sa.text(owed))

    # Alerts from before notifications existed are not news: do not e-mail them all on upgrade.
    op.execute(sa.text("UPDATE alerts SET notified_open_at = created_at, notified_resolved_at = resolved_at"))


def downgrade():
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.drop_index('ix_alerts_notice_owed')

    with op.batch_alter_table('phone_assignments', schema=None) as batch_op:
        batch_op.drop_column('verify_queued_at')

    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.drop_column('notify_detail')
        batch_op.drop_column('notify_attempts')
        batch_op.drop_column('notified_resolved_at')
        batch_op.drop_column('notified_open_at')
        batch_op.drop_column('notify_claimed_at')

    with op.batch_alter_table('test_calls', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_test_calls_phone_assignment_id'))
        batch_op.drop_index(batch_op.f('ix_test_calls_inbound_call_sid'))
        batch_op.drop_index(batch_op.f('ix_test_calls_finished_at'))
        batch_op.drop_index(batch_op.f('ix_test_calls_call_sid'))

    op.drop_table('test_calls')
    with op.batch_alter_table('imported_monitor_alerts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_imported_monitor_alerts_imported_at'))

    op.drop_table('imported_monitor_alerts')
    with op.batch_alter_table('worker_heartbeats', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_worker_heartbeats_last_seen_at'))

    op.drop_table('worker_heartbeats')
    with op.batch_alter_table('job_runs', schema=None) as batch_op:
        batch_op.drop_index('ix_job_runs_status_run_after')
        batch_op.drop_index(batch_op.f('ix_job_runs_enqueued_at'))

    op.drop_table('job_runs')
    with op.batch_alter_table('health_checks', schema=None) as batch_op:
        batch_op.drop_index('ix_health_checks_component_checked')

    op.drop_table('health_checks')
