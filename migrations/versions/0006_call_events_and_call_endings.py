"""calls as they happened: every callback kept (call_events), and what ended a call, a hang-up, a fallback's error

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 20:28:34.149912

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('call_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('event_key', sa.String(length=64), nullable=False),
    sa.Column('call_sid', sa.String(length=34), nullable=False),
    sa.Column('leg_sid', sa.String(length=34), nullable=True),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('sequence_number', sa.Integer(), nullable=True),
    sa.Column('sent_at', sa.DateTime(), nullable=True),
    sa.Column('received_at', sa.DateTime(), nullable=False),
    sa.Column('params', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_call_events')),
    sa.UniqueConstraint('event_key', name=op.f('uq_call_events_event_key'))
    )
    with op.batch_alter_table('call_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_call_events_call_sid'), ['call_sid'], unique=False)

    with op.batch_alter_table('call_records', schema=None) as batch_op:
        batch_op.add_column(sa.Column('caller_hung_up', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('ended_by', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('error_code', sa.String(length=10), nullable=True))
        batch_op.add_column(sa.Column('error_url', sa.String(length=500), nullable=True))

    # Calls over before this revision were ended by Twilio's final status callback: it was the only way to end one.
    op.execute("UPDATE call_records SET ended_by = 'status-callback' "
               "WHERE ended_at IS NOT NULL AND status IN ('completed', 'busy', 'failed', 'no-answer', 'canceled')")



def downgrade():
    with op.batch_alter_table('call_records', schema=None) as batch_op:
        batch_op.drop_column('error_url')
        batch_op.drop_column('error_code')
        batch_op.drop_column('ended_by')
        batch_op.drop_column('caller_hung_up')

    with op.batch_alter_table('call_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_call_events_call_sid'))

    op.drop_table('call_events')
