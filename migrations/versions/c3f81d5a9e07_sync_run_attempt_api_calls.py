"""sync run: the running attempt's API calls (written by its heartbeat, counted by the reaper)

Revision ID: c3f81d5a9e07
Revises: c3f7a9d2e5b1
Create Date: 2026-12-06 04:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c3f81d5a9e07'
down_revision = 'c3f7a9d2e5b1'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('sync_run', schema=None) as batch_op:
        batch_op.add_column(sa.Column('attempt_api_calls', sa.Integer(), server_default='0', nullable=False))


def downgrade():
    with op.batch_alter_table('sync_run', schema=None) as batch_op:
        batch_op.drop_column('attempt_api_calls')
