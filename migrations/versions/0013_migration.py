"""migration between hosts and host maintenance

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-26 05:12:00

"""


# revision identifiers, used by Alembic.
revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
