"""page text cut: each page records whether extract_text cut its text at MAX_PAGE_TEXT_CHARS

A page exactly at the cap was counted as cut; now only pages that had more are.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-26 08:50:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade():
    # A constant default: no table rewrite. Pages stored before are taken as not cut; their documents keep
    # the count recorded then.
    op.add_column(
        "document_pages", sa.Column("text_cut", sa.Boolean(), server_default=sa.text("false"), nullable=False)
    )


def downgrade():
    op.drop_column("document_pages", "text_cut")
