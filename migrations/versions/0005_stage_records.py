"""stage records and run-keyed outputs: per-stage status, units and checkpoints; pages keyed by run, with OCR

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 02:40:00

"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "document_stage_records",
        sa.Column("job_id", sa.BigInteger(), sa.ForeignKey("document_queue.id", ondelete="CASCADE"), nullable=False),
        sa.Column("stage", sa.String(length=32), nullable=False),
        sa.Column("document_id", sa.BigInteger(), sa.ForeignKey("documents.id", ondelete="CASCADE"), nullable=False),
        sa.Column("position", sa.SmallInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), server_default=sa.text("'pending'"), nullable=False),
        sa.Column("attempts", sa.SmallInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("unit", sa.String(length=16), nullable=True),
        sa.Column("units_done", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("units_total", sa.Integer(), nullable=True),
        sa.Column("checkpoint", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'running', 'completed', 'failed', 'skipped')",
            name="document_stage_records_status_valid",
        ),
        sa.PrimaryKeyConstraint("job_id", "stage"),
    )
    op.create_index("document_stage_records_document_idx", "document_stage_records", ["document_id", "job_id"])

    op.drop_constraint("document_queue_operation_valid", "document_queue")
    op.create_check_constraint(
        "document_queue_operation_valid", "document_queue", "operation IN ('process', 'reprocess', 'ocr')"
    )

    # Readers see the outputs of a document's last completed run only.
    op.add_column("documents", sa.Column("results_job_id", sa.BigInteger(), nullable=True))
    op.create_foreign_key(
        "documents_results_job_fk", "documents", "document_queue", ["results_job_id"], ["id"], ondelete="SET NULL"
    )
    op.execute(
        "UPDATE documents d SET results_job_id = (SELECT max(q.id) FROM document_queue q "
        "WHERE q.document_id = d.id AND q.status = 'completed')"
    )

    # Pages belong to the run that wrote them; existing pages to their document's newest run.
    op.add_column("document_pages", sa.Column("job_id", sa.BigInteger(), nullable=True))
    op.execute(
        "UPDATE document_pages p SET job_id = "
        "(SELECT max(q.id) FROM document_queue q WHERE q.document_id = p.document_id)"
    )
    op.execute("DELETE FROM document_pages WHERE job_id IS NULL")
    op.alter_column("document_pages", "job_id", nullable=False)
    op.create_foreign_key(
        "document_pages_job_fk", "document_pages", "document_queue", ["job_id"], ["id"], ondelete="CASCADE"
    )
    op.drop_constraint("document_pages_pkey", "document_pages")
    op.create_primary_key("document_pages_pkey", "document_pages", ["job_id", "page_number"])
    op.create_index("document_pages_document_idx", "document_pages", ["document_id"])
    op.add_column("document_pages", sa.Column("ocr", sa.Boolean(), server_default=sa.text("false"), nullable=False))
    op.add_column("document_pages", sa.Column("ocr_words", postgresql.JSONB(), nullable=True))
    op.add_column("document_pages", sa.Column("ocr_rotation", sa.SmallInteger(), nullable=True))


def downgrade():
    op.drop_column("document_pages", "ocr_rotation")
    op.drop_column("document_pages", "ocr_words")
    op.drop_column("document_pages", "ocr")
    op.drop_index("document_pages_document_idx", "document_pages")
    op.drop_constraint("document_pages_pkey", "document_pages")
    # Keep each document's pages of its newest run, as the old key allows one set.
    op.execute(
        "DELETE FROM document_pages p WHERE job_id <> (SELECT max(job_id) FROM document_pages o "
        "WHERE o.document_id = p.document_id)"
    )
    op.create_primary_key("document_pages_pkey", "document_pages", ["document_id", "page_number"])
    op.drop_constraint("document_pages_job_fk", "document_pages")
    op.drop_column("document_pages", "job_id")
    op.drop_constraint("documents_results_job_fk", "documents")
    op.drop_column("documents", "results_job_id")
    op.execute("DELETE FROM document_queue WHERE operation = 'ocr'")
    op.drop_constraint("document_queue_operation_valid", "document_queue")
    op.create_check_constraint(
        "document_queue_operation_valid", "document_queue", "operation IN ('process', 'reprocess')"
    )
    op.drop_index("document_stage_records_document_idx", "document_stage_records")
    op.drop_table("document_stage_records")
