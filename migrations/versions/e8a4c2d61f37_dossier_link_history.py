"""dossier link history: how much history a link's sync reads (from the transfer date, previous years, all)

Revision ID: e8a4c2d61f37
Revises: e8b2d4f6a1c3
Create Date: 2026-12-06 01:15:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'e8a4c2d61f37'
down_revision = 'e8b2d4f6a1c3'
branch_labels = None
depends_on = None


def upgrade():
    # existing links keep the window they always had (1 January two years back): "previous_year"
    with op.batch_alter_table('dossier_link', schema=None) as batch_op:
        batch_op.add_column(sa.Column('history', sa.String(length=16), nullable=False,
                                      server_default='previous_year'))


def downgrade():
    with op.batch_alter_table('dossier_link', schema=None) as batch_op:
        batch_op.drop_column('history')
