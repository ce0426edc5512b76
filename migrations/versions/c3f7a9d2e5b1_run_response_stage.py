"""run_response_stage: a parked sync run's kept answers (docs/sync-engine.md "Parking")

Revision ID: c3f7a9d2e5b1
Revises: c3f1a9d7e2b4
Create Date: 2026-12-06 04:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c3f7a9d2e5b1'
down_revision = 'c3f1a9d7e2b4'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'run_response_stage',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('run_id', sa.Integer(), nullable=False),
        sa.Column('seq', sa.Integer(), nullable=False),
        sa.Column('key_hash', sa.String(length=64), nullable=False),
        sa.Column('status', sa.Integer(), nullable=False),
        sa.Column('headers', sa.JSON(), nullable=False),
        sa.Column('body', sa.LargeBinary(), nullable=False),
        sa.Column('window_end', sa.Date(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['run_id'], ['sync_run.id'], name=op.f('fk_run_response_stage_run_id_sync_run'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_run_response_stage')),
        sa.UniqueConstraint('run_id', 'seq', name='uq_run_response_stage_run_seq'),
    )


def downgrade():
    op.drop_table('run_response_stage')
