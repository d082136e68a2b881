"""call acceptance: whether a call's client required a key press, and who pressed it when

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 23:50:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('call_records', schema=None) as batch_op:
        batch_op.add_column(sa.Column('requires_accept', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('accepted_by', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('accepted_at', sa.DateTime(), nullable=True))


def downgrade():
    with op.batch_alter_table('call_records', schema=None) as batch_op:
        batch_op.drop_column('accepted_at')
        batch_op.drop_column('accepted_by')
        batch_op.drop_column('requires_accept')
