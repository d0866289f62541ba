"""budgets and quotas: per-document budget marks, a run's AI calls, per-user storage and daily page quotas

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 17:20:00

"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade():
    # Constant defaults and nullable columns: no table is rewritten.
    op.add_column(
        "documents",
        sa.Column("budget_cuts", postgresql.JSONB(), server_default=sa.text("'{}'::jsonb"), nullable=False),
    )
    op.add_column("document_queue", sa.Column("ai_calls", sa.BigInteger(), server_default=sa.text("0"), nullable=False))
    # NULL: the setting's default applies (DEFAULT_STORAGE_QUOTA_MB, DEFAULT_DAILY_PAGE_QUOTA).
    op.add_column("users", sa.Column("storage_quota_mb", sa.Integer(), nullable=True))
    op.add_column("users", sa.Column("daily_page_quota", sa.Integer(), nullable=True))
    op.add_column(
        "users", sa.Column("storage_used_bytes", sa.BigInteger(), server_default=sa.text("0"), nullable=False)
    )
    # What each user stores already; from now on the statements that store uploads keep it.
    op.execute(
        "UPDATE users u SET storage_used_bytes = s.total FROM "
        "(SELECT owner_id, sum(size_bytes) AS total FROM documents GROUP BY owner_id) s WHERE s.owner_id = u.id"
    )
    op.create_check_constraint("users_storage_quota_nonnegative", "users", "storage_quota_mb >= 0")
    op.create_check_constraint("users_daily_page_quota_nonnegative", "users", "daily_page_quota >= 0")
    op.create_table(
        "daily_page_usage",
        sa.Column("user_id", sa.BigInteger(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("pages", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "day"),
    )


def downgrade():
    op.drop_table("daily_page_usage")
    op.drop_constraint("users_daily_page_quota_nonnegative", "users")
    op.drop_constraint("users_storage_quota_nonnegative", "users")
    op.drop_column("users", "storage_used_bytes")
    op.drop_column("users", "daily_page_quota")
    op.drop_column("users", "storage_quota_mb")
    op.drop_column("document_queue", "ai_calls")
    op.drop_column("documents", "budget_cuts")
