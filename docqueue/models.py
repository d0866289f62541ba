"""The Postgres schema: the source of truth for users, documents and the queue.

Plain SQLAlchemy declarative models, so the worker uses them without Flask;
the web wraps the same `Base` with Flask-SQLAlchemy and Alembic reads its
metadata. Schema changes go through a revision in `migrations/`.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from docqueue.statuses import (
    ACTIVE_QUEUE_STATUSES,
    IN_FLIGHT_QUEUE_STATUSES,
    OPERATIONS,
    DocumentStatus,
    FailureKind,
    OcrStatus,
    QueueStatus,
    sql_values,
)


def _in(column: str, values) -> str:
    return f"{column} IN ({sql_values(values)})"


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    is_admin: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    # SHA-256 of the API token: a leaked table does not leak usable tokens.
    api_token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    concurrent_ocr_jobs: Mapped[int] = mapped_column(Integer, server_default=text("2"))
    ocr_timeout_seconds: Mapped[int] = mapped_column(Integer, server_default=text("300"))
    enable_background_ocr: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    # The four attributes a login session needs (Flask-Login's protocol), without importing Flask here.
    is_authenticated = True
    is_active = True
    is_anonymous = False

    def get_id(self) -> str:
        return str(self.id)

    __table_args__ = (
        CheckConstraint("concurrent_ocr_jobs >= 0", name="users_concurrent_ocr_jobs_nonnegative"),
        CheckConstraint("ocr_timeout_seconds > 0", name="users_ocr_timeout_positive"),
    )


class Document(Base):
    __tablename__ = "documents"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    filename: Mapped[str] = mapped_column(String(1024))
    # As declared by the uploader; `detected_type` is what `inspect` found in the bytes.
    content_type: Mapped[str] = mapped_column(String(255))
    detected_type: Mapped[str | None] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    page_count: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), server_default=text("'pending'"))
    progress: Mapped[int] = mapped_column(SmallInteger, server_default=text("0"))
    error: Mapped[str | None] = mapped_column(Text)
    ocr_status: Mapped[str] = mapped_column(String(16), server_default=text("'unknown'"))
    ocr_error: Mapped[str | None] = mapped_column(Text)
    ocr_completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint(_in("status", DocumentStatus), name="documents_status_valid"),
        CheckConstraint(_in("ocr_status", OcrStatus), name="documents_ocr_status_valid"),
        CheckConstraint("progress BETWEEN 0 AND 100", name="documents_progress_percent"),
        Index("documents_owner_created_idx", "owner_id", text("created_at DESC"), text("id DESC")),
    )


class DocumentPage(Base):
    """The text layer of one page, written by `extract_text`."""

    __tablename__ = "document_pages"

    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"), primary_key=True)
    page_number: Mapped[int] = mapped_column(Integer, primary_key=True)
    text: Mapped[str] = mapped_column(Text)
    char_count: Mapped[int] = mapped_column(Integer)


class BlobChunk(Base):
    """One slice of a stored file; the Postgres blob store streams these."""

    __tablename__ = "blob_chunks"

    blob_key: Mapped[str] = mapped_column(String(255), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class QueueItem(Base):
    """One request to run a document through the pipeline."""

    __tablename__ = "document_queue"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"))
    # Denormalised from the document so the dispatcher counts per-user capacity from one table.
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    operation: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), server_default=text("'pending'"))
    # The pipeline stage to run next (or running now); survives crashes so work resumes there.
    stage: Mapped[str] = mapped_column(String(32))
    priority: Mapped[int] = mapped_column(SmallInteger)
    # Attempts at the current stage: each claim increments it, each stage handoff resets it.
    attempts: Mapped[int] = mapped_column(SmallInteger, server_default=text("0"))
    max_attempts: Mapped[int] = mapped_column(SmallInteger)
    file_size: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    run_after: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    dispatched_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Fencing token: a worker may publish only while the row still carries its token.
    lease_token: Mapped[str | None] = mapped_column(UUID(as_uuid=False))
    worker_id: Mapped[str | None] = mapped_column(String(255))
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    error_message: Mapped[str | None] = mapped_column(Text)
    # Whether the last failure can pass on another try (FailureKind); requeueing skips permanent ones.
    failure_kind: Mapped[str | None] = mapped_column(String(16))
    processing_time_ms: Mapped[int | None] = mapped_column(BigInteger)

    __table_args__ = (
        CheckConstraint(_in("status", QueueStatus), name="document_queue_status_valid"),
        CheckConstraint(_in("operation", OPERATIONS), name="document_queue_operation_valid"),
        CheckConstraint(_in("failure_kind", FailureKind), name="document_queue_failure_kind_valid"),
        CheckConstraint("attempts >= 0 AND max_attempts >= 1", name="document_queue_attempts_valid"),
        # At most one live job per document: reprocessing waits for the current run.
        Index(
            "document_queue_one_active_per_document",
            "document_id",
            unique=True,
            postgresql_where=text(_in("status", ACTIVE_QUEUE_STATUSES)),
        ),
        # Admission: per owner, best priority first, oldest first.
        Index(
            "document_queue_pending_admission_idx",
            "owner_id",
            text("priority DESC"),
            "created_at",
            "id",
            postgresql_where=text("status = 'pending'"),
        ),
        Index(
            "document_queue_in_flight_idx",
            "owner_id",
            "status",
            postgresql_where=text(_in("status", IN_FLIGHT_QUEUE_STATUSES)),
        ),
        Index("document_queue_lease_idx", "lease_expires_at", postgresql_where=text("status = 'processing'")),
        Index("document_queue_dispatched_idx", "dispatched_at", postgresql_where=text("status = 'queued'")),
        Index("document_queue_status_created_idx", "status", "created_at"),
        # The daily cleanup of old completed rows.
        Index("document_queue_completed_idx", "completed_at", postgresql_where=text("status = 'completed'")),
        # get_pending_items: the global admission order.
        Index(
            "document_queue_pending_order_idx",
            text("priority DESC"),
            "created_at",
            "id",
            postgresql_where=text("status = 'pending'"),
        ),
        Index("document_queue_document_idx", "document_id", text("id DESC")),
    )


class QueueDailyStats(Base):
    """Completions per day, kept by a trigger (see the first migration) as jobs complete.

    Counting a busy day's completed rows would cost in proportion to the day's
    work; these counters make `get_queue_stats` cost the same at any volume.
    Each completion adds to one of a few slots, so concurrent completions
    seldom wait on the same row.
    """

    __tablename__ = "queue_daily_stats"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    slot: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    completed: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    wait_seconds: Mapped[float] = mapped_column(Double, server_default=text("0"))


class StageAttempt(Base):
    """One attempt at one stage of a queue item: who ran it, when, how long, and how it ended.

    Written in the transaction of the transition it records (`docqueue/queue/attempts.py`).
    """

    __tablename__ = "stage_attempts"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("document_queue.id", ondelete="CASCADE"))
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"))
    stage: Mapped[str] = mapped_column(String(32))
    attempt: Mapped[int] = mapped_column(SmallInteger)
    worker_id: Mapped[str] = mapped_column(String(255))
    # The claim's fencing token: names the attempt uniquely.
    lease_token: Mapped[str] = mapped_column(UUID(as_uuid=False), unique=True)
    outcome: Mapped[str] = mapped_column(String(16), server_default=text("'running'"))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    duration_ms: Mapped[int | None] = mapped_column(BigInteger)
    error_class: Mapped[str | None] = mapped_column(String(255))
    error_message: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        CheckConstraint(
            "outcome IN ('running', 'succeeded', 'retrying', 'failed', 'lost', 'handed_back')",
            name="stage_attempts_outcome_valid",
        ),
        Index("stage_attempts_document_idx", "document_id", "id"),
        Index("stage_attempts_job_idx", "job_id"),
    )


class WorkerHeartbeat(Base):
    """A live worker process, as its last heartbeat saw it: lets the clock notice work with no worker."""

    __tablename__ = "worker_heartbeats"

    worker_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    running: Mapped[int] = mapped_column(Integer, server_default=text("0"))
