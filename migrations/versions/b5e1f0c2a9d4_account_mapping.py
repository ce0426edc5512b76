"""account mapping: a file's accounts mapped to standard codes and kinds (audit-file uploads)

Revision ID: b5e1f0c2a9d4
Revises: 217439c86a49
Create Date: 2026-12-05 22:35:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'b5e1f0c2a9d4'
down_revision = '217439c86a49'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('account_mapping',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('dossier_id', sa.Integer(), nullable=False),
    sa.Column('account_number', sa.String(length=50), nullable=False),
    sa.Column('scheme', sa.String(length=32), nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('origin', sa.String(length=16), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['dossier_id'], ['dossier.id'], name=op.f('fk_account_mapping_dossier_id_dossier'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_account_mapping')),
    sa.UniqueConstraint('dossier_id', 'account_number', name=op.f('uq_account_mapping_dossier_id_account_number'))
    )
    with op.batch_alter_table('account_mapping', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_account_mapping_dossier_id'), ['dossier_id'], unique=False)


def downgrade():
    with op.batch_alter_table('account_mapping', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_account_mapping_dossier_id'))

    op.drop_table('account_mapping')
