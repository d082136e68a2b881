"""failed-forward streak on numbers; index for recently changed calls

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 10:05:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('phone_assignments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('failed_forward_streak', sa.Integer(), server_default='0', nullable=False))

    with op.batch_alter_table('call_records', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_call_records_updated_at'), ['updated_at'], unique=False)

    # Numbers that were already failing keep their red dot: count each one's latest finished forwards.
    op.execute(sa.text("""
        UPDATE phone_assignments SET failed_forward_streak = (
            SELECT COUNT(*) FROM (
                SELECT c.dial_status FROM call_records c
                WHERE c.phone_assignment_id = phone_assignments.id
                  AND c.dial_status IS NOT NULL AND c.is_test = false
                  AND c.started_at > COALESCE((
                      SELECT MAX(ok.started_at) FROM call_records ok
                      WHERE ok.phone_assignment_id = phone_assignments.id AND ok.is_test = false
                        AND ok.dial_status IS NOT NULL
                        AND ok.dial_status NOT IN ('busy', 'no-answer', 'failed')
                  ), '1900-01-01')
                LIMIT 3
            ) AS failing
        )
    """))


def downgrade():
    with op.batch_alter_table('call_records', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_call_records_updated_at'))

    with op.batch_alter_table('phone_assignments', schema=None) as batch_op:
        batch_op.drop_column('failed_forward_streak')
