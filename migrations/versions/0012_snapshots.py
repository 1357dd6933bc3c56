"""snapshots and suspended VMs

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-26 05:11:00

"""


# revision identifiers, used by Alembic.
revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
