"""the data check of each sync run (balances against ledger lines, trial balance)

Revision ID: d4c7a1e9b3f6
Revises: e8a4c2d61f37
Create Date: 2026-12-06 01:30:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'd4c7a1e9b3f6'
down_revision = 'e8a4c2d61f37'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('sync_run', schema=None) as batch_op:
        batch_op.add_column(sa.Column('data_check_status', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('data_check', sa.JSON(), nullable=True))


def downgrade():
    with op.batch_alter_table('sync_run', schema=None) as batch_op:
        batch_op.drop_column('data_check')
        batch_op.drop_column('data_check_status')
