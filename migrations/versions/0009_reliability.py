"""reliability: attempt history per stage, worker presence for heartbeats

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-26 02:40:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "stage_attempts",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("job_id", sa.BigInteger(), nullable=False),
        sa.Column("document_id", sa.BigInteger(), nullable=False),
        sa.Column("stage", sa.String(length=32), nullable=False),
        sa.Column("attempt", sa.SmallInteger(), nullable=False),
        sa.Column("worker_id", sa.String(length=255), nullable=False),
        sa.Column("lease_token", sa.UUID(as_uuid=False), nullable=False),
        sa.Column("outcome", sa.String(length=16), server_default=sa.text("'running'"), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("duration_ms", sa.BigInteger(), nullable=True),
        sa.Column("error_class", sa.String(length=255), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "outcome IN ('running', 'succeeded', 'retrying', 'failed', 'lost', 'handed_back')",
            name="stage_attempts_outcome_valid",
        ),
        sa.ForeignKeyConstraint(["job_id"], ["document_queue.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["document_id"], ["documents.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("lease_token", name="stage_attempts_lease_token_key"),
    )
    op.create_index("stage_attempts_document_idx", "stage_attempts", ["document_id", "id"])
    op.create_index("stage_attempts_job_idx", "stage_attempts", ["job_id"])
    op.create_table(
        "worker_heartbeats",
        sa.Column("worker_id", sa.String(length=255), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("running", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.PrimaryKeyConstraint("worker_id"),
    )


def downgrade():
    op.drop_table("worker_heartbeats")
    op.drop_index("stage_attempts_job_idx", table_name="stage_attempts")
    op.drop_index("stage_attempts_document_idx", table_name="stage_attempts")
    op.drop_table("stage_attempts")
