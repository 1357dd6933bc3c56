"""disks: every volume of a VM (the system disk included); how far a VM grows live

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-26 05:10:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'disks',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('vm_id', sa.Integer(), nullable=False),
        sa.Column('target', sa.String(length=8), nullable=False),
        sa.Column('volume_name', sa.String(length=255), nullable=False),
        sa.Column('volume_path', sa.String(length=1024), nullable=False),
        sa.Column('size_gib', sa.Integer(), nullable=False),
        sa.Column('system', sa.Boolean(), nullable=False),
        sa.Column('attached', sa.Boolean(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['vm_id'], ['vms.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('vm_id', 'volume_name', name='uq_disks_vm_volume'))
    with op.batch_alter_table('disks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_disks_vm_id'), ['vm_id'], unique=False)
    with op.batch_alter_table('vms', schema=None) as batch_op:
        batch_op.add_column(sa.Column('max_vcpus', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('max_memory_mib', sa.Integer(), nullable=True))
    # Every VM so far had one disk: its system disk.
    op.execute("INSERT INTO disks (vm_id, target, volume_name, volume_path, size_gib, "
               "system, attached, created_at) SELECT id, 'vda', volume_name, volume_path, "
               "disk_gib, 1, 1, created_at FROM vms")


def downgrade():
    with op.batch_alter_table('vms', schema=None) as batch_op:
        batch_op.drop_column('max_memory_mib')
        batch_op.drop_column('max_vcpus')
    with op.batch_alter_table('disks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_disks_vm_id'))
    op.drop_table('disks')
