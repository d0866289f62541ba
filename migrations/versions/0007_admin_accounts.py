"""admin page and accounts: roles, disabled users, session versions, cancelled jobs, job events, audit log

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26 02:30:00

"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


# The first migration's edges; this revision adds cancellation by an operator and retry of cancelled work.
BASE_EDGES = [
    "('pending', 'queued')",  # admitted by the dispatcher
    "('queued', 'processing')",  # claimed by a worker
    "('processing', 'queued')",  # handed on to the next stage
    "('processing', 'pending')",  # attempt failed or lease lapsed: retry later
    "('processing', 'completed')",
    "('processing', 'failed')",
    "('failed', 'pending')",  # retried by an operator
]
CANCEL_EDGES = [
    "('pending', 'cancelled')",  # cancelled by an operator
    "('queued', 'cancelled')",
    "('processing', 'cancelled')",
    "('cancelled', 'pending')",  # retried by an operator
]


def guard_function(edges: list[str]) -> str:
    edges = ",\n        ".join(edges)
    return f"""
CREATE OR REPLACE FUNCTION document_queue_guard_transition() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status IS DISTINCT FROM OLD.status AND (OLD.status, NEW.status) NOT IN ({edges}
    ) THEN
        RAISE EXCEPTION 'illegal queue transition % -> % for job %', OLD.status, NEW.status, OLD.id
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$
"""


# Every status change of a job, with the attempt and error it ended with: the job
# detail's timeline and attempt history, kept by the database whoever makes the change.
RECORD_EVENT_FUNCTION = """
CREATE FUNCTION document_queue_record_event() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    ended_badly boolean := NEW.status IN ('pending', 'failed', 'cancelled')
                           AND OLD.status IN ('pending', 'queued', 'processing');
BEGIN
    IF NEW.status IS DISTINCT FROM OLD.status OR NEW.stage IS DISTINCT FROM OLD.stage THEN
        INSERT INTO job_events (job_id, from_status, to_status, stage, attempt, worker_id, error_message, traceback)
        VALUES (NEW.id, OLD.status, NEW.status, OLD.stage, GREATEST(OLD.attempts, NEW.attempts),
                COALESCE(OLD.worker_id, NEW.worker_id),
                -- An attempt that ended badly, or a cancel: this change's error (and a crash's traceback).
                CASE WHEN ended_badly THEN NEW.error_message END,
                CASE WHEN ended_badly AND OLD.status = 'processing' THEN NEW.error_traceback END);
    END IF;
    RETURN NEW;
END
$$
"""

# The first migration's completion counter, also counting per minute for the dashboard's charts and backlog ETA.
COUNT_COMPLETION_FUNCTION = """
CREATE OR REPLACE FUNCTION document_queue_count_completion() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status = 'completed' AND OLD.status IS DISTINCT FROM 'completed' THEN
        INSERT INTO queue_daily_stats AS stats (day, slot, completed, wait_seconds)
        VALUES (current_date, NEW.id % 16, 1, extract(epoch FROM NEW.started_at - NEW.created_at))
        ON CONFLICT (day, slot) DO UPDATE
            SET completed = stats.completed + 1, wait_seconds = stats.wait_seconds + EXCLUDED.wait_seconds;
        INSERT INTO queue_minute_stats AS stats (minute, slot, completed, wait_seconds, processing_ms)
        VALUES (date_trunc('minute', now()), NEW.id % 16, 1, extract(epoch FROM NEW.started_at - NEW.created_at),
                COALESCE(NEW.processing_time_ms, 0))
        ON CONFLICT (minute, slot) DO UPDATE
            SET completed = stats.completed + 1, wait_seconds = stats.wait_seconds + EXCLUDED.wait_seconds,
                processing_ms = stats.processing_ms + EXCLUDED.processing_ms;
    END IF;
    RETURN NEW;
END
$$
"""

OLD_COUNT_COMPLETION_FUNCTION = (
    COUNT_COMPLETION_FUNCTION.split("        INSERT INTO queue_minute_stats")[0]
    + """    END IF;
    RETURN NEW;
END
$$
"""
)

QUEUE_STATUSES = "'pending', 'queued', 'processing', 'completed', 'failed'"
DOCUMENT_STATUSES = "'pending', 'processing', 'completed', 'failed'"


def upgrade():
    op.add_column("users", sa.Column("role", sa.String(length=16), server_default=sa.text("'viewer'"), nullable=False))
    op.execute("UPDATE users SET role = 'admin' WHERE is_admin")
    op.drop_column("users", "is_admin")
    op.create_check_constraint("users_role_valid", "users", "role IN ('viewer', 'operator', 'admin')")
    op.add_column("users", sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("users", sa.Column("session_version", sa.Integer(), server_default=sa.text("1"), nullable=False))

    op.drop_constraint("document_queue_status_valid", "document_queue", type_="check")
    op.create_check_constraint(
        "document_queue_status_valid", "document_queue", f"status IN ({QUEUE_STATUSES}, 'cancelled')"
    )
    op.drop_constraint("documents_status_valid", "documents", type_="check")
    op.create_check_constraint("documents_status_valid", "documents", f"status IN ({DOCUMENT_STATUSES}, 'cancelled')")
    op.execute(guard_function(BASE_EDGES + CANCEL_EDGES))

    # A crash's traceback, for operators only: the job page's attempt history (the trigger below copies it).
    op.add_column("document_queue", sa.Column("error_traceback", sa.Text(), nullable=True))

    # The jobs list of one owner (a viewer's, or filtered by user), newest first, without walking everyone's.
    op.create_index("document_queue_owner_id_idx", "document_queue", ["owner_id", sa.literal_column("id DESC")])
    # Throughput and wait charts read recent completions by time.
    op.create_index(
        "document_queue_completed_at_idx",
        "document_queue",
        ["completed_at"],
        postgresql_where=sa.text("status = 'completed'"),
    )

    op.create_table(
        "queue_minute_stats",
        sa.Column("minute", sa.DateTime(timezone=True), nullable=False),
        sa.Column("slot", sa.SmallInteger(), nullable=False),
        sa.Column("completed", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("wait_seconds", sa.Double(), server_default=sa.text("0"), nullable=False),
        sa.Column("processing_ms", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.PrimaryKeyConstraint("minute", "slot"),
    )
    op.execute(COUNT_COMPLETION_FUNCTION)

    op.create_table(
        "job_events",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("job_id", sa.BigInteger(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.text("clock_timestamp()"), nullable=False),
        sa.Column("from_status", sa.String(length=16), nullable=False),
        sa.Column("to_status", sa.String(length=16), nullable=False),
        sa.Column("stage", sa.String(length=32), nullable=False),
        sa.Column("attempt", sa.SmallInteger(), nullable=False),
        sa.Column("worker_id", sa.String(length=255), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("traceback", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["job_id"], ["document_queue.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("job_events_job_idx", "job_events", ["job_id", "id"])
    op.create_index("job_events_at_idx", "job_events", ["at"])
    op.execute(RECORD_EVENT_FUNCTION)
    op.execute(
        "CREATE TRIGGER document_queue_record_event AFTER UPDATE OF status, stage ON document_queue "
        "FOR EACH ROW EXECUTE FUNCTION document_queue_record_event()"
    )

    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("actor_id", sa.BigInteger(), nullable=True),
        sa.Column("actor", sa.String(length=320), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("count", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("detail", sa.Text(), server_default=sa.text("''"), nullable=False),
        sa.ForeignKeyConstraint(["actor_id"], ["users.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )

    # One row: switches an operator flips for the whole queue.
    op.create_table(
        "queue_control",
        sa.Column("id", sa.SmallInteger(), server_default=sa.text("1"), nullable=False),
        sa.Column("admission_paused", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.CheckConstraint("id = 1", name="queue_control_single_row"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.execute("INSERT INTO queue_control (id) VALUES (1)")

    # A retry of "all failed matching the filter": the ids seen at preview, so later failures are not touched.
    op.create_table(
        "frozen_selections",
        sa.Column("token", postgresql.UUID(as_uuid=False), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("created_by", sa.BigInteger(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("job_ids", postgresql.ARRAY(sa.BigInteger()), nullable=False),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("token"),
    )


def downgrade():
    op.drop_table("frozen_selections")
    op.drop_table("queue_control")
    op.drop_table("audit_log")
    op.execute("DROP TRIGGER document_queue_record_event ON document_queue")
    op.execute("DROP FUNCTION document_queue_record_event()")
    op.drop_index("job_events_at_idx", table_name="job_events")
    op.drop_index("job_events_job_idx", table_name="job_events")
    op.drop_table("job_events")
    op.drop_index("document_queue_owner_id_idx", table_name="document_queue")
    op.drop_column("document_queue", "error_traceback")
    op.drop_index(
        "document_queue_completed_at_idx", table_name="document_queue", postgresql_where=sa.text("status = 'completed'")
    )
    op.execute(OLD_COUNT_COMPLETION_FUNCTION)
    op.drop_table("queue_minute_stats")
    op.execute("DELETE FROM document_queue WHERE status = 'cancelled'")
    op.execute("UPDATE documents SET status = 'failed' WHERE status = 'cancelled'")
    op.execute(guard_function(BASE_EDGES))
    op.drop_constraint("documents_status_valid", "documents", type_="check")
    op.create_check_constraint("documents_status_valid", "documents", f"status IN ({DOCUMENT_STATUSES})")
    op.drop_constraint("document_queue_status_valid", "document_queue", type_="check")
    op.create_check_constraint("document_queue_status_valid", "document_queue", f"status IN ({QUEUE_STATUSES})")
    op.drop_column("users", "session_version")
    op.drop_column("users", "disabled_at")
    op.drop_constraint("users_role_valid", "users", type_="check")
    op.add_column("users", sa.Column("is_admin", sa.Boolean(), server_default=sa.text("false"), nullable=False))
    op.execute("UPDATE users SET is_admin = (role = 'admin')")
    op.drop_column("users", "role")
