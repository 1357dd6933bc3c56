"""migration between hosts and host maintenance

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-26 05:12:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('hosts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('migration_address', sa.String(length=255),
                                      nullable=True))
        batch_op.add_column(sa.Column('draining', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
    op.create_table(
        'remnants',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('uri', sa.String(length=255), nullable=False),
        sa.Column('host_name', sa.String(length=64), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('pool', sa.String(length=64), nullable=False),
        sa.Column('name', sa.String(length=255), nullable=False),
        sa.Column('vm_name', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id'))
    with op.batch_alter_table('remnants', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_remnants_uri'), ['uri'], unique=False)


def downgrade():
    with op.batch_alter_table('remnants', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_remnants_uri'))
    op.drop_table('remnants')
    with op.batch_alter_table('hosts', schema=None) as batch_op:
        batch_op.drop_column('draining')
        batch_op.drop_column('migration_address')
