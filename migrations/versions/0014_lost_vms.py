"""VMs lost with a forgotten host

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-27 09:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'lost_vms',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('owner_id', sa.Integer(), nullable=False),
        sa.Column('vm_id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('host_name', sa.String(length=64), nullable=False),
        sa.Column('template_name', sa.String(length=64), nullable=False),
        sa.Column('image_name', sa.String(length=64), nullable=False),
        sa.Column('vcpus', sa.Integer(), nullable=False),
        sa.Column('memory_mib', sa.Integer(), nullable=False),
        sa.Column('disk_gib', sa.Integer(), nullable=False),
        sa.Column('ip_address', sa.String(length=45), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('lost_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['owner_id'], ['users.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'))
    with op.batch_alter_table('lost_vms', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_lost_vms_owner_id'), ['owner_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_lost_vms_vm_id'), ['vm_id'], unique=False)


def downgrade():
    # its indexes go with it (MariaDB refuses to drop ix_lost_vms_owner_id alone: the
    # owner's foreign key needs it)
    op.drop_table('lost_vms')
