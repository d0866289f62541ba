"""ingest abandoned: a run whose process stopped beating is marked `abandoned` by the clock

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-26 08:40:00

"""

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def _status_check(statuses: str) -> None:
    op.drop_constraint("ingest_runs_status_valid", "ingest_runs", type_="check")
    op.create_check_constraint("ingest_runs_status_valid", "ingest_runs", f"status IN ({statuses})")


def upgrade():
    _status_check("'running', 'completed', 'interrupted', 'failed', 'abandoned'")


def downgrade():
    op.execute("UPDATE ingest_runs SET status = 'interrupted' WHERE status = 'abandoned'")
    _status_check("'running', 'completed', 'interrupted', 'failed'")
