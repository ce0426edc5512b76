"""upload column mapping: the file route's saved column names per firm, package and export kind

Revision ID: c6d1e2f3a4b5
Revises: b5e1f0c2a9d4
Create Date: 2026-12-05 22:40:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c6d1e2f3a4b5'
down_revision = 'b5e1f0c2a9d4'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('upload_column_mapping',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('firm_id', sa.Integer(), nullable=False),
    sa.Column('package', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('columns', sa.JSON(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['firm_id'], ['firm.id'], name=op.f('fk_upload_column_mapping_firm_id_firm'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_upload_column_mapping')),
    sa.UniqueConstraint('firm_id', 'package', 'kind', name=op.f('uq_upload_column_mapping_firm_id_package_kind'))
    )
    with op.batch_alter_table('upload_column_mapping', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_upload_column_mapping_firm_id'), ['firm_id'], unique=False)


def downgrade():
    with op.batch_alter_table('upload_column_mapping', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_upload_column_mapping_firm_id'))

    op.drop_table('upload_column_mapping')
