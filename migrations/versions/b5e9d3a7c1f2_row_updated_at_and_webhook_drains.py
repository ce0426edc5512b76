"""row-level updated_at for the API (accounts, balances, ledger lines) and the webhook drain index

Existing rows are stamped with the migration's time: a client's next updated_since pull gets
them once more, then only what syncs insert or really change.

Revision ID: b5e9d3a7c1f2
Revises: d4c7a1e9b3f6
Create Date: 2026-12-06 01:20:00

"""
from datetime import datetime, timezone

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'b5e9d3a7c1f2'
down_revision = 'd4c7a1e9b3f6'
branch_labels = None
depends_on = None

TABLES = ('account', 'period_balance', 'ledger_line')


def upgrade():
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('updated_at', sa.DateTime(), nullable=True))
        op.execute(sa.text(f'UPDATE {table} SET updated_at = :now').bindparams(now=now))
    with op.batch_alter_table('ledger_line', schema=None) as batch_op:
        batch_op.create_index('ix_ledger_line_dossier_updated_at', ['dossier_id', 'updated_at'], unique=False)
    with op.batch_alter_table('webhook_delivery', schema=None) as batch_op:
        batch_op.create_index('ix_webhook_delivery_pending', ['endpoint_id', 'status', 'next_attempt_at'], unique=False)


def downgrade():
    with op.batch_alter_table('webhook_delivery', schema=None) as batch_op:
        batch_op.drop_index('ix_webhook_delivery_pending')
    with op.batch_alter_table('ledger_line', schema=None) as batch_op:
        batch_op.drop_index('ix_ledger_line_dossier_updated_at')
    for table in reversed(TABLES):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column('updated_at')
