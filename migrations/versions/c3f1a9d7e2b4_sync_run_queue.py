"""sync run queue: the RQ queue of a run's job, none while a first sync waits for its turn

Revision ID: c3f1a9d7e2b4
Revises: b5e9d3a7c1f2
Create Date: 2026-12-06 04:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c3f1a9d7e2b4'
down_revision = 'b5e9d3a7c1f2'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('sync_run', schema=None) as batch_op:
        batch_op.add_column(sa.Column('queue', sa.String(length=16), nullable=True))
    # runs on their way before the upgrade have their job in the one queue there was: "sync"
    op.execute("UPDATE sync_run SET queue = 'sync' WHERE status IN ('queued', 'running', 'deferred')")


def downgrade():
    with op.batch_alter_table('sync_run', schema=None) as batch_op:
        batch_op.drop_column('queue')
