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
    Identity,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

#: Queue item states. `queued` means admitted by the dispatcher with a
#: message on its way to a worker; `processing` means a worker holds the lease.
QUEUE_STATUSES = ("pending", "queued", "processing", "completed", "failed", "cancelled")
ACTIVE_QUEUE_STATUSES = ("pending", "queued", "processing")
IN_FLIGHT_QUEUE_STATUSES = ("queued", "processing")
OPERATIONS = ("process", "reprocess")
DOCUMENT_STATUSES = ("pending", "processing", "completed", "failed", "cancelled")
#: Account roles, each allowed everything the one before it is: viewers watch their own work,
#: operators watch and steer the whole queue, admins also manage accounts.
ROLES = ("viewer", "operator", "admin")
OCR_STATUSES = ("unknown", "not_needed", "needed", "processing", "completed", "failed")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), server_default=text("'viewer'"))
    #: Set when an admin disables the account: no login, no session, no API token works.
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: Part of the login session's user id: bumping it ends every session and remember cookie.
    session_version: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    # SHA-256 of the API token: a leaked table does not leak usable tokens.
    api_token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    concurrent_ocr_jobs: Mapped[int] = mapped_column(Integer, server_default=text("2"))
    ocr_timeout_seconds: Mapped[int] = mapped_column(Integer, server_default=text("300"))
    enable_background_ocr: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    # The attributes a login session needs (Flask-Login's protocol), without importing Flask here.
    is_authenticated = True
    is_anonymous = False

    @property
    def is_active(self) -> bool:
        return self.disabled_at is None

    def get_id(self) -> str:
        """The session's user id: id and session version, so a bumped version voids old sessions and cookies."""
        return f"{self.id}:{self.session_version}"

    def has_role(self, role: str) -> bool:
        """True if this user's role is `role` or a more powerful one."""
        return ROLES.index(self.role) >= ROLES.index(role)

    __table_args__ = (
        CheckConstraint(_in("role", ROLES), name="users_role_valid"),
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
        CheckConstraint(_in("status", DOCUMENT_STATUSES), name="documents_status_valid"),
        CheckConstraint(_in("ocr_status", OCR_STATUSES), name="documents_ocr_status_valid"),
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
    #: A crash's traceback (operators see it on the job page; never shown on the document).
    error_traceback: Mapped[str | None] = mapped_column(Text)
    processing_time_ms: Mapped[int | None] = mapped_column(BigInteger)

    __table_args__ = (
        CheckConstraint(_in("status", QUEUE_STATUSES), name="document_queue_status_valid"),
        CheckConstraint(_in("operation", OPERATIONS), name="document_queue_operation_valid"),
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
        # get_pending_items: the global admission order.
        Index(
            "document_queue_pending_order_idx",
            text("priority DESC"),
            "created_at",
            "id",
            postgresql_where=text("status = 'pending'"),
        ),
        Index("document_queue_document_idx", "document_id", text("id DESC")),
        Index("document_queue_owner_id_idx", "owner_id", text("id DESC")),
        Index("document_queue_completed_at_idx", "completed_at", postgresql_where=text("status = 'completed'")),
    )


class JobEvent(Base):
    """One status or stage change of a queue item, written by a trigger (migration 0005)."""

    __tablename__ = "job_events"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("document_queue.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=text("clock_timestamp()"))
    from_status: Mapped[str] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    stage: Mapped[str] = mapped_column(String(32))
    attempt: Mapped[int] = mapped_column(SmallInteger)
    worker_id: Mapped[str | None] = mapped_column(String(255))
    error_message: Mapped[str | None] = mapped_column(Text)
    traceback: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("job_events_job_idx", "job_id", "id"), Index("job_events_at_idx", "at"))


class AuditRecord(Base):
    """Who did what to the queue or to an account, to how many, and when."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    #: The actor's email (or "cli") as it was then: the record outlives the account.
    actor: Mapped[str] = mapped_column(String(320))
    action: Mapped[str] = mapped_column(String(64))
    count: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    detail: Mapped[str] = mapped_column(Text, server_default=text("''"))


class QueueControl(Base):
    """The single row of queue-wide switches an operator flips."""

    __tablename__ = "queue_control"

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True, server_default=text("1"))
    admission_paused: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))

    __table_args__ = (CheckConstraint("id = 1", name="queue_control_single_row"),)


class FrozenSelection(Base):
    """The job ids a bulk action's preview counted, so the confirmed action touches exactly those."""

    __tablename__ = "frozen_selections"

    token: Mapped[str] = mapped_column(UUID(as_uuid=False), primary_key=True, server_default=text("gen_random_uuid()"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    description: Mapped[str] = mapped_column(Text)
    job_ids: Mapped[list[int]] = mapped_column(ARRAY(BigInteger))


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


class QueueMinuteStats(Base):
    """Completions per minute, kept by the same trigger as `QueueDailyStats`: the dashboard's charts and ETA."""

    __tablename__ = "queue_minute_stats"

    minute: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    slot: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    completed: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    wait_seconds: Mapped[float] = mapped_column(Double, server_default=text("0"))
    processing_ms: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))


class WorkerHeartbeat(Base):
    """A worker process's last beat (docqueue/queue/workers.py)."""

    __tablename__ = "worker_heartbeats"

    worker_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    running: Mapped[int] = mapped_column(Integer, server_default=text("0"))
