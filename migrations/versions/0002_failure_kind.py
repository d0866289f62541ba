"""failure kind on queue items: permanent failures are not requeued

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 02:30:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("document_queue", sa.Column("failure_kind", sa.String(length=16), nullable=True))
    op.create_check_constraint(
        "document_queue_failure_kind_valid", "document_queue", "failure_kind IN ('permanent', 'transient')"
    )
    # Before this revision a permanent failure ended with attempts left; a transient one used them all up.
    op.execute(
        "UPDATE document_queue SET failure_kind = CASE WHEN attempts < max_attempts "
        "THEN 'permanent' ELSE 'transient' END WHERE status = 'failed'"
    )


def downgrade():
    op.drop_constraint("document_queue_failure_kind_valid", "document_queue")
    op.drop_column("document_queue", "failure_kind")
