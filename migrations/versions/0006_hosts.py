"""hosts: the table of hypervisor hosts is "hosts" and its references "host_id", the
name the pages, the command line and the documents use (docs/architecture.md).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25 21:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

# (table, its index on the column or None, the index's columns, FK on delete)
CHILDREN = [
    ('vms', 'ix_{t}_{c}', None, None),
    ('image_locations', None, None, 'CASCADE'),
    ('leftovers', 'ix_{t}_{c}', None, 'CASCADE'),
    ('host_samples', 'ix_host_samples_{p}_at', ['at'], 'CASCADE'),
]


def _rename(old_table, new_table, old_col, new_col):
    mysql = op.get_bind().dialect.name in ('mysql', 'mariadb')
    # Children first lose what ties them to the parent's old name.
    for table, index, extra, ondelete in CHILDREN:
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(f'fk_{table}_{old_col}_{old_table}', type_='foreignkey')
        if mysql and index is None:
            # InnoDB made an index of the FK's name for it; it outlives the FK.
            op.drop_index(f'fk_{table}_{old_col}_{old_table}', table_name=table)
        with op.batch_alter_table(table) as batch:
            if table == 'vms':
                batch.drop_constraint(f'uq_vms_{old_col.split("_")[0]}_domain', type_='unique')
            if index:
                batch.drop_index(index.format(t=table, c=old_col, p=old_col[:-3]))
    op.rename_table(old_table, new_table)
    with op.batch_alter_table(new_table) as batch:
        for column in ('name', 'uri'):
            batch.drop_constraint(f'uq_{old_table}_{column}', type_='unique')
            batch.create_unique_constraint(f'uq_{new_table}_{column}', [column])
    for table, index, extra, ondelete in CHILDREN:
        with op.batch_alter_table(table) as batch:
            batch.alter_column(old_col, new_column_name=new_col, existing_type=sa.Integer(),
                               existing_nullable=False)
        with op.batch_alter_table(table) as batch:
            if index:
                batch.create_index(index.format(t=table, c=new_col, p=new_col[:-3]),
                                   [new_col] + (extra or []),
                                   unique=False)
            if table == 'vms':
                batch.create_unique_constraint(f'uq_vms_{new_col.split("_")[0]}_domain',
                                               [new_col, 'domain_name'])
            batch.create_foreign_key(f'fk_{table}_{new_col}_{new_table}', new_table,
                                     [new_col], ['id'], ondelete=ondelete)


def upgrade():
    _rename('servers', 'hosts', 'server_id', 'host_id')


def downgrade():
    _rename('hosts', 'servers', 'host_id', 'server_id')
