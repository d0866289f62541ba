"""ocr ranges: a long scan's pages in ranges any worker may claim

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-26 06:00:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "ocr_ranges",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("job_id", sa.BigInteger(), nullable=False),
        # The OCR stage's claim the range belongs to: its pages are written under that lease only.
        sa.Column("lease_token", sa.UUID(as_uuid=False), nullable=False),
        sa.Column("pages", sa.ARRAY(sa.Integer()), nullable=False),
        sa.Column("status", sa.String(length=16), server_default=sa.text("'pending'"), nullable=False),
        sa.Column("worker_id", sa.String(length=255), nullable=True),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.CheckConstraint("status IN ('pending', 'running', 'done', 'failed')", name="ocr_ranges_status_valid"),
        sa.ForeignKeyConstraint(["job_id"], ["document_queue.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ocr_ranges_job_idx", "ocr_ranges", ["job_id", "status"])


def downgrade():
    op.drop_index("ocr_ranges_job_idx", table_name="ocr_ranges")
    op.drop_table("ocr_ranges")
