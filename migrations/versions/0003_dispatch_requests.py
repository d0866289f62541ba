"""dispatch requests: a sequence callers bump so a busy dispatcher knows to run again

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 03:00:00

"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade():
    op.execute("CREATE SEQUENCE dispatch_requests")


def downgrade():
    op.execute("DROP SEQUENCE dispatch_requests")
