"""paused work: an operator holds one lane or one stage without pausing admission for everything

A row names a lane (`interactive`, `bulk`) or a stage (`enrich`, ...) that
is held: admission skips its pending jobs, a worker's claim refuses its
queued ones, and a job finishing the stage before a held one waits in
`pending` until it is resumed. Deleting the row resumes it.

Revision ID: 0024
Revises: 0016
Create Date: 2026-12-07 17:30:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0016"
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


def downgrade():
    op.drop_table("paused_work")
