"""bulk ingest: queue lanes, dedupe index, run records

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26 02:30:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade():
    # Dedupe of an ingest looks up a batch's hashes among the owner's documents.
    op.create_index("documents_owner_sha256_idx", "documents", ["owner_id", "sha256"])

    op.add_column(
        "document_queue",
        sa.Column("lane", sa.String(length=16), server_default=sa.text("'interactive'"), nullable=False),
    )
    op.create_check_constraint("document_queue_lane_valid", "document_queue", "lane IN ('interactive', 'bulk')")
    # Admission picks per owner and lane now; the per-owner index it replaces would only cost writes.
    op.drop_index("document_queue_pending_admission_idx", "document_queue")
    op.create_index(
        "document_queue_pending_lane_idx",
        "document_queue",
        ["owner_id", "lane", sa.literal_column("priority DESC"), "created_at", "id"],
        postgresql_where=sa.text("status = 'pending'"),
    )

    op.create_table(
        "ingest_runs",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("owner_id", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("paths", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), server_default=sa.text("'running'"), nullable=False),
        sa.Column("files_seen", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("files_added", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("bytes_added", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("duplicates", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("rejected", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("source IN ('cli', 'browser')", name="ingest_runs_source_valid"),
        sa.CheckConstraint(
            "status IN ('running', 'completed', 'interrupted', 'failed')", name="ingest_runs_status_valid"
        ),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ingest_runs_started_idx", "ingest_runs", [sa.literal_column("started_at DESC"), sa.literal_column("id DESC")]
    )
    op.create_table(
        "ingest_rejections",
        sa.Column("run_id", sa.BigInteger(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["ingest_runs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("run_id", "seq"),
    )


def downgrade():
    op.drop_table("ingest_rejections")
    op.drop_index("ingest_runs_started_idx", "ingest_runs")
    op.drop_table("ingest_runs")
    op.drop_index("document_queue_pending_lane_idx", "document_queue")
    op.create_index(
        "document_queue_pending_admission_idx",
        "document_queue",
        ["owner_id", sa.literal_column("priority DESC"), "created_at", "id"],
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.drop_constraint("document_queue_lane_valid", "document_queue")
    op.drop_column("document_queue", "lane")
    op.drop_index("documents_owner_sha256_idx", "documents")
