"""results run index: the cleanup asks, for each old completed run, whether a document shows it

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-26 06:10:00

"""

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index("documents_results_job_idx", "documents", ["results_job_id"])


def downgrade():
    op.drop_index("documents_results_job_idx", table_name="documents")
