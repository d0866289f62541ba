"""hardening: pages cut at MAX_PAGE_TEXT_CHARS, and Idempotency-Key answers of the upload API

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 02:45:00

"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column(
        "documents", sa.Column("text_truncated_pages", sa.Integer(), server_default=sa.text("0"), nullable=False)
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("user_id", sa.BigInteger(), sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("key", sa.String(length=255), primary_key=True),
        sa.Column("request_sha256", sa.String(length=64), nullable=False),
        sa.Column("document_id", sa.BigInteger(), sa.ForeignKey("documents.id", ondelete="CASCADE"), nullable=True),
        sa.Column("response_status", sa.SmallInteger(), nullable=True),
        sa.Column("response_body", postgresql.JSONB(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )
    op.create_index("idempotency_keys_created_idx", "idempotency_keys", ["created_at"])


def downgrade():
    op.drop_index("idempotency_keys_created_idx", table_name="idempotency_keys")
    op.drop_table("idempotency_keys")
    op.drop_column("documents", "text_truncated_pages")
