"""batches: many VMs in one action, and their expiry

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-26 13:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'batches',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('pattern', sa.String(length=64), nullable=False),
        sa.Column('template_id', sa.Integer(), nullable=True),
        sa.Column('template_name', sa.String(length=64), nullable=False),
        sa.Column('created_by_id', sa.Integer(), nullable=True),
        sa.Column('group_id', sa.Integer(), nullable=True),
        sa.Column('per_user', sa.Integer(), nullable=False),
        sa.Column('expires_at', sa.DateTime(), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('task_id', sa.Integer(), nullable=True),
        sa.Column('planned', sa.Text(), nullable=False),
        sa.Column('failures', sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(['template_id'], ['templates.id'],
                                name=op.f('fk_batches_template_id_templates'),
                                ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['created_by_id'], ['users.id'],
                                name=op.f('fk_batches_created_by_id_users'),
                                ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['group_id'], ['groups.id'],
                                name=op.f('fk_batches_group_id_groups'), ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['task_id'], ['tasks.id'],
                                name=op.f('fk_batches_task_id_tasks'), ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_batches')))
    with op.batch_alter_table('batches', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_batches_group_id'), ['group_id'], unique=False)
    with op.batch_alter_table('vms', schema=None) as batch_op:
        batch_op.add_column(sa.Column('batch_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('expires_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('expired_at', sa.DateTime(), nullable=True))
        batch_op.create_index(batch_op.f('ix_vms_batch_id'), ['batch_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_vms_batch_id_batches'), 'batches',
                                    ['batch_id'], ['id'], ondelete='SET NULL')


def downgrade():
    with op.batch_alter_table('vms', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_vms_batch_id_batches'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_vms_batch_id'))
        batch_op.drop_column('expired_at')
        batch_op.drop_column('expires_at')
        batch_op.drop_column('batch_id')
    op.drop_table('batches')
