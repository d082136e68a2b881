"""routing rules: clients' hours, after-hours, failover, whisper and accept; the block list; the rule and the
target that took each call

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 21:25:02.420539

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('blocked_numbers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('number', sa.String(length=20), nullable=False),
    sa.Column('client_id', sa.Integer(), nullable=True),
    sa.Column('reason', sa.String(length=200), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_by_label', sa.String(length=254), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['client_id'], ['clients.id'], name=op.f('fk_blocked_numbers_client_id_clients'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_blocked_numbers_created_by_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_blocked_numbers'))
    )
    with op.batch_alter_table('blocked_numbers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_blocked_numbers_client_id'), ['client_id'], unique=False)

    with op.batch_alter_table('call_records', schema=None) as batch_op:
        batch_op.add_column(sa.Column('route_rule', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('answered_by', sa.String(length=20), nullable=True))

    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.add_column(sa.Column('timezone', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('business_hours', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('closed_dates', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('after_hours', sa.String(length=10), server_default='voicemail', nullable=False))
        batch_op.add_column(sa.Column('after_hours_number', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('failover_numbers', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('ring_mode', sa.String(length=12), server_default='sequential', nullable=False))
        batch_op.add_column(sa.Column('ring_seconds', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('whisper', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('require_accept', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('greeting', sa.String(length=500), nullable=True))

    # Calls before the rules had one of three: the client's target, the default number, or the message.
    op.execute("UPDATE call_records SET route_rule = CASE routed_by WHEN 'assignment' THEN 'open' "
               "WHEN 'default_number' THEN 'default' WHEN 'message' THEN 'message' END WHERE routed_by IS NOT NULL")
    op.execute("UPDATE call_records SET answered_by = forwarded_to "
               "WHERE dial_status IN ('completed', 'answered') AND forwarded_to IS NOT NULL")


def downgrade():
    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.drop_column('greeting')
        batch_op.drop_column('require_accept')
        batch_op.drop_column('whisper')
        batch_op.drop_column('ring_seconds')
        batch_op.drop_column('ring_mode')
        batch_op.drop_column('failover_numbers')
        batch_op.drop_column('after_hours_number')
        batch_op.drop_column('after_hours')
        batch_op.drop_column('closed_dates')
        batch_op.drop_column('business_hours')
        batch_op.drop_column('timezone')

    with op.batch_alter_table('call_records', schema=None) as batch_op:
        batch_op.drop_column('answered_by')
        batch_op.drop_column('route_rule')

    with op.batch_alter_table('blocked_numbers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_blocked_numbers_client_id'))

    op.drop_table('blocked_numbers')
