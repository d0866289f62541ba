"""images, chunks, embeddings, enrichment answers and result callbacks

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 02:40:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def _vector_type() -> str:
    """pgvector's `vector` where the extension can be installed, else a plain float4 array (docqueue/vectors.py)."""
    bind = op.get_bind()
    if bind.execute(sa.text("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")).first():
        op.execute("CREATE EXTENSION IF NOT EXISTS vector")
        return "vector"
    return "real[]"


def upgrade():
    vector = _vector_type()
    op.create_table(
        "document_images",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("document_id", sa.BigInteger(), sa.ForeignKey("documents.id", ondelete="CASCADE"), nullable=False),
        sa.Column("job_id", sa.BigInteger(), sa.ForeignKey("document_queue.id", ondelete="CASCADE"), nullable=False),
        # The PDF object: a row per image object (truth.json's `image_xrefs`), its bytes stored once per sha256.
        sa.Column("xref", sa.Integer(), nullable=False),
        sa.Column("page_number", sa.Integer(), nullable=False),
        # Of the stored bytes; of the raw PDF stream for an image skipped without decoding.
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("format", sa.String(length=16), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("skipped_reason", sa.Text(), nullable=True),
        sa.Column("embedding_model", sa.String(length=255), nullable=True),
    )
    op.create_index("document_images_object_idx", "document_images", ["job_id", "xref"], unique=True)
    op.create_index("document_images_document_idx", "document_images", ["document_id"])
    op.execute(f"ALTER TABLE document_images ADD COLUMN embedding {vector}")

    op.create_table(
        "document_chunks",
        sa.Column("job_id", sa.BigInteger(), sa.ForeignKey("document_queue.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("seq", sa.Integer(), primary_key=True),
        sa.Column("document_id", sa.BigInteger(), sa.ForeignKey("documents.id", ondelete="CASCADE"), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("page_start", sa.Integer(), nullable=False),
        sa.Column("page_end", sa.Integer(), nullable=False),
        sa.Column("embedding_model", sa.String(length=255), nullable=True),
    )
    op.create_index("document_chunks_document_idx", "document_chunks", ["document_id"])
    op.execute(f"ALTER TABLE document_chunks ADD COLUMN embedding {vector}")

    op.create_table(
        "document_enrichments",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("document_id", sa.BigInteger(), sa.ForeignKey("documents.id", ondelete="CASCADE"), nullable=False),
        sa.Column("job_id", sa.BigInteger(), sa.ForeignKey("document_queue.id", ondelete="CASCADE"), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("image_id", sa.BigInteger(), sa.ForeignKey("document_images.id", ondelete="CASCADE"), nullable=True),
        sa.Column("model", sa.String(length=255), nullable=False),
        sa.Column("answer", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint(
            "kind IN ('product_discovery', 'vision_description')", name="document_enrichments_kind_valid"
        ),
    )
    op.create_index(
        "document_enrichments_subject_idx",
        "document_enrichments",
        ["job_id", "kind", sa.literal_column("COALESCE(image_id, 0)")],
        unique=True,
    )
    op.create_index("document_enrichments_document_idx", "document_enrichments", ["document_id"])

    op.add_column("documents", sa.Column("callback_url", sa.String(length=2048), nullable=True))
    op.add_column("users", sa.Column("callback_url", sa.String(length=2048), nullable=True))
    # 244 random bits, hex: core Postgres has no gen_random_bytes without pgcrypto.
    op.add_column(
        "users",
        sa.Column(
            "callback_secret",
            sa.String(length=64),
            nullable=False,
            server_default=sa.text("replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '')"),
        ),
    )
    op.create_table(
        "callback_deliveries",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column(
            "job_id",
            sa.BigInteger(),
            sa.ForeignKey("document_queue.id", ondelete="CASCADE"),
            nullable=False,
            unique=True,
        ),
        sa.Column("document_id", sa.BigInteger(), sa.ForeignKey("documents.id", ondelete="CASCADE"), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), server_default=sa.text("'pending'"), nullable=False),
        sa.Column("attempts", sa.SmallInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("last_status_code", sa.SmallInteger(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status IN ('pending', 'delivered', 'failed')", name="callback_deliveries_status_valid"),
    )
    op.create_index(
        "callback_deliveries_due_idx",
        "callback_deliveries",
        ["next_attempt_at"],
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index(
        "callback_deliveries_document_idx", "callback_deliveries", ["document_id", sa.literal_column("id DESC")]
    )


def downgrade():
    op.drop_table("callback_deliveries")
    op.drop_column("users", "callback_secret")
    op.drop_column("users", "callback_url")
    op.drop_column("documents", "callback_url")
    op.drop_table("document_enrichments")
    op.drop_table("document_chunks")
    op.drop_table("document_images")
