"""paused work, and import runs' documents

An operator holds one lane or one stage without pausing admission for everything.

A row names a lane (`interactive`, `bulk`) or a stage (`enrich`, ...) that
is held: admission skips its pending jobs, a worker's claim refuses its
queued ones, and a job finishing the stage before a held one waits in
`pending` until it is resumed. Deleting the row resumes it.

A document remembers the import run that added it (`ingest_run_id`), so a
run on `/admin/ingests` links to its documents' jobs.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07 17:30:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "paused_work",
        sa.Column("scope", sa.String(8), nullable=False),
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("paused_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("paused_by", sa.Text(), nullable=False),
        sa.CheckConstraint("scope IN ('lane', 'stage')", name="paused_work_scope_valid"),
        sa.PrimaryKeyConstraint("scope", "name"),
    )
    op.add_column(
        "documents",
        sa.Column("ingest_run_id", sa.BigInteger(), sa.ForeignKey("ingest_runs.id", ondelete="SET NULL")),
    )
    op.create_index(
        "documents_ingest_run_idx",
        "documents",
        ["ingest_run_id"],
        postgresql_where=sa.text("ingest_run_id IS NOT NULL"),
    )


def downgrade():
    op.drop_index("documents_ingest_run_idx", table_name="documents")
    op.drop_column("documents", "ingest_run_id")
    op.drop_table("paused_work")
