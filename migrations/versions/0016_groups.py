"""groups of users, group managers and quotas, templates restricted to groups

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-28 09:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'groups',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('description', sa.String(length=255), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('max_vms', sa.Integer(), nullable=True),
        sa.Column('max_vcpus', sa.Integer(), nullable=True),
        sa.Column('max_memory_mib', sa.Integer(), nullable=True),
        sa.Column('max_disk_gib', sa.Integer(), nullable=True),
        sa.Column('quota_lock', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_groups')),
        sa.UniqueConstraint('name', name=op.f('uq_groups_name')))
    op.create_table(
        'group_members',
        sa.Column('group_id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('manager', sa.Boolean(), nullable=False),
        sa.Column('added_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['group_id'], ['groups.id'],
                                name=op.f('fk_group_members_group_id_groups'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'],
                                name=op.f('fk_group_members_user_id_users'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('group_id', 'user_id', name=op.f('pk_group_members')))
    with op.batch_alter_table('group_members', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_group_members_user_id'), ['user_id'],
                              unique=False)
    op.create_table(
        'template_groups',
        sa.Column('template_id', sa.Integer(), nullable=False),
        sa.Column('group_id', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['template_id'], ['templates.id'],
                                name=op.f('fk_template_groups_template_id_templates'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['group_id'], ['groups.id'],
                                name=op.f('fk_template_groups_group_id_groups'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('template_id', 'group_id', name=op.f('pk_template_groups')))
    with op.batch_alter_table('template_groups', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_template_groups_group_id'), ['group_id'],
                              unique=False)
    # Every template made before groups existed stays offered to everybody.
    with op.batch_alter_table('templates', schema=None) as batch_op:
        batch_op.add_column(sa.Column('public', sa.Boolean(), nullable=False,
                                      server_default=sa.true()))


def downgrade():
    with op.batch_alter_table('templates', schema=None) as batch_op:
        batch_op.drop_column('public')
    # their indexes go with them (MariaDB refuses to drop one alone: a foreign key needs it)
    op.drop_table('template_groups')
    op.drop_table('group_members')
    op.drop_table('groups')
