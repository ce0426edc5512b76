"""sync run recovery: rate-limited deferrals in a row, data commit marker

Revision ID: e8b2d4f6a1c3
Revises: a7c3e91b5d20
Create Date: 2026-12-06 01:10:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'e8b2d4f6a1c3'
down_revision = 'a7c3e91b5d20'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('sync_run', schema=None) as batch_op:
        batch_op.add_column(sa.Column('deferrals', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('data_committed_at', sa.DateTime(), nullable=True))


def downgrade():
    with op.batch_alter_table('sync_run', schema=None) as batch_op:
        batch_op.drop_column('data_committed_at')
        batch_op.drop_column('deferrals')
