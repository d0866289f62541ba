"""initial schema: users, documents, pages, blob chunks, the queue and its transition guard

Revision ID: 0001
Revises:
Create Date: 2026-11-22 21:00:30.139484

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


GUARD_FUNCTION = """
CREATE FUNCTION document_queue_guard_transition() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status IS DISTINCT FROM OLD.status AND (OLD.status, NEW.status) NOT IN (
        ('pending', 'queued'),        -- admitted by the dispatcher
        ('queued', 'processing'),     -- claimed by a worker
        ('processing', 'queued'),     -- handed on to the next stage
        ('processing', 'pending'),    -- attempt failed or lease lapsed: retry later
        ('processing', 'completed'),
        ('processing', 'failed'),
        ('failed', 'pending')         -- requeued by an operator
    ) THEN
        RAISE EXCEPTION 'illegal queue transition % -> % for job %', OLD.status, NEW.status, OLD.id
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$
"""


# Today's completions for the stats, counted as they happen instead of by scanning.
COUNT_COMPLETION_FUNCTION = """
CREATE FUNCTION document_queue_count_completion() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status = 'completed' AND OLD.status IS DISTINCT FROM 'completed' THEN
        INSERT INTO queue_daily_stats AS stats (day, slot, completed, wait_seconds)
        VALUES (current_date, NEW.id % 16, 1, extract(epoch FROM NEW.started_at - NEW.created_at))
        ON CONFLICT (day, slot) DO UPDATE
            SET completed = stats.completed + 1, wait_seconds = stats.wait_seconds + EXCLUDED.wait_seconds;
    END IF;
    RETURN NEW;
END
$$
"""


def upgrade():
    op.create_table(
        "blob_chunks",
        sa.Column("blob_key", sa.String(length=255), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("blob_key", "seq"),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("is_admin", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("api_token_hash", sa.String(length=64), nullable=False),
        sa.Column("concurrent_ocr_jobs", sa.Integer(), server_default=sa.text("2"), nullable=False),
        sa.Column("ocr_timeout_seconds", sa.Integer(), server_default=sa.text("300"), nullable=False),
        sa.Column("enable_background_ocr", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("concurrent_ocr_jobs >= 0", name="users_concurrent_ocr_jobs_nonnegative"),
        sa.CheckConstraint("ocr_timeout_seconds > 0", name="users_ocr_timeout_positive"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("api_token_hash"),
        sa.UniqueConstraint("email"),
    )
    op.create_table(
        "documents",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("owner_id", sa.BigInteger(), nullable=False),
        sa.Column("filename", sa.String(length=1024), nullable=False),
        sa.Column("content_type", sa.String(length=255), nullable=False),
        sa.Column("detected_type", sa.String(length=64), nullable=True),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("page_count", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), server_default=sa.text("'pending'"), nullable=False),
        sa.Column("progress", sa.SmallInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("ocr_status", sa.String(length=16), server_default=sa.text("'unknown'"), nullable=False),
        sa.Column("ocr_error", sa.Text(), nullable=True),
        sa.Column("ocr_completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "ocr_status IN ('unknown', 'not_needed', 'needed', 'processing', 'completed', 'failed')",
            name="documents_ocr_status_valid",
        ),
        sa.CheckConstraint("status IN ('pending', 'processing', 'completed', 'failed')", name="documents_status_valid"),
        sa.CheckConstraint("progress BETWEEN 0 AND 100", name="documents_progress_percent"),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("documents", schema=None) as batch_op:
        batch_op.create_index(
            "documents_owner_created_idx",
            ["owner_id", sa.literal_column("created_at DESC"), sa.literal_column("id DESC")],
            unique=False,
        )

    op.create_table(
        "document_pages",
        sa.Column("document_id", sa.BigInteger(), nullable=False),
        sa.Column("page_number", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("char_count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["document_id"], ["documents.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("document_id", "page_number"),
    )
    op.create_table(
        "document_queue",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("document_id", sa.BigInteger(), nullable=False),
        sa.Column("owner_id", sa.BigInteger(), nullable=False),
        sa.Column("operation", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), server_default=sa.text("'pending'"), nullable=False),
        sa.Column("stage", sa.String(length=32), nullable=False),
        sa.Column("priority", sa.SmallInteger(), nullable=False),
        sa.Column("attempts", sa.SmallInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("max_attempts", sa.SmallInteger(), nullable=False),
        sa.Column("file_size", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("run_after", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("dispatched_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_token", sa.UUID(as_uuid=False), nullable=True),
        sa.Column("worker_id", sa.String(length=255), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("processing_time_ms", sa.BigInteger(), nullable=True),
        sa.CheckConstraint("operation IN ('process', 'reprocess')", name="document_queue_operation_valid"),
        sa.CheckConstraint(
            "status IN ('pending', 'queued', 'processing', 'completed', 'failed')", name="document_queue_status_valid"
        ),
        sa.CheckConstraint("attempts >= 0 AND max_attempts >= 1", name="document_queue_attempts_valid"),
        sa.ForeignKeyConstraint(["document_id"], ["documents.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("document_queue", schema=None) as batch_op:
        batch_op.create_index(
            "document_queue_pending_order_idx",
            [sa.literal_column("priority DESC"), "created_at", "id"],
            unique=False,
            postgresql_where=sa.text("status = 'pending'"),
        )
        batch_op.create_index(
            "document_queue_dispatched_idx",
            ["dispatched_at"],
            unique=False,
            postgresql_where=sa.text("status = 'queued'"),
        )
        batch_op.create_index(
            "document_queue_document_idx", ["document_id", sa.literal_column("id DESC")], unique=False
        )
        batch_op.create_index(
            "document_queue_in_flight_idx",
            ["owner_id", "status"],
            unique=False,
            postgresql_where=sa.text("status IN ('queued', 'processing')"),
        )
        batch_op.create_index(
            "document_queue_lease_idx",
            ["lease_expires_at"],
            unique=False,
            postgresql_where=sa.text("status = 'processing'"),
        )
        batch_op.create_index(
            "document_queue_one_active_per_document",
            ["document_id"],
            unique=True,
            postgresql_where=sa.text("status IN ('pending', 'queued', 'processing')"),
        )
        batch_op.create_index(
            "document_queue_pending_admission_idx",
            ["owner_id", sa.literal_column("priority DESC"), "created_at", "id"],
            unique=False,
            postgresql_where=sa.text("status = 'pending'"),
        )
        batch_op.create_index("document_queue_status_created_idx", ["status", "created_at"], unique=False)

    # The queue's state machine, enforced by the database itself: a buggy or
    # hand-written UPDATE cannot move a job along an edge that does not exist.
    op.create_table(
        "queue_daily_stats",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("slot", sa.SmallInteger(), nullable=False),
        sa.Column("completed", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("wait_seconds", sa.Double(), server_default=sa.text("0"), nullable=False),
        sa.PrimaryKeyConstraint("day", "slot"),
    )
    op.execute(COUNT_COMPLETION_FUNCTION)
    op.execute(
        "CREATE TRIGGER document_queue_count_completion AFTER UPDATE OF status ON document_queue "
        "FOR EACH ROW EXECUTE FUNCTION document_queue_count_completion()"
    )
    op.execute(GUARD_FUNCTION)
    op.execute(
        "CREATE TRIGGER document_queue_guard_transition BEFORE UPDATE OF status ON document_queue "
        "FOR EACH ROW EXECUTE FUNCTION document_queue_guard_transition()"
    )


def downgrade():
    op.execute("DROP TRIGGER document_queue_guard_transition ON document_queue")
    op.execute("DROP FUNCTION document_queue_guard_transition()")
    op.execute("DROP TRIGGER document_queue_count_completion ON document_queue")
    op.execute("DROP FUNCTION document_queue_count_completion()")
    op.drop_table("queue_daily_stats")
    with op.batch_alter_table("document_queue", schema=None) as batch_op:
        batch_op.drop_index("document_queue_status_created_idx")
        batch_op.drop_index("document_queue_pending_admission_idx", postgresql_where=sa.text("status = 'pending'"))
        batch_op.drop_index(
            "document_queue_one_active_per_document",
            postgresql_where=sa.text("status IN ('pending', 'queued', 'processing')"),
        )
        batch_op.drop_index("document_queue_lease_idx", postgresql_where=sa.text("status = 'processing'"))
        batch_op.drop_index(
            "document_queue_in_flight_idx", postgresql_where=sa.text("status IN ('queued', 'processing')")
        )
        batch_op.drop_index("document_queue_document_idx")
        batch_op.drop_index("document_queue_dispatched_idx", postgresql_where=sa.text("status = 'queued'"))
        batch_op.drop_index("document_queue_pending_order_idx", postgresql_where=sa.text("status = 'pending'"))

    op.drop_table("document_queue")
    op.drop_table("document_pages")
    with op.batch_alter_table("documents", schema=None) as batch_op:
        batch_op.drop_index("documents_owner_created_idx")

    op.drop_table("documents")
    op.drop_table("users")
    op.drop_table("blob_chunks")
