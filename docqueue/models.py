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
    select,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, column_property, mapped_column

from docqueue.statuses import (
    ACTIVE_QUEUE_STATUSES,
    IN_FLIGHT_QUEUE_STATUSES,
    OPERATIONS,
    ROLES,
    DocumentStatus,
    FailureKind,
    IngestRunStatus,
    OcrRangeStatus,
    OcrStatus,
    QueueLane,
    QueueStatus,
    StageStatus,
    sql_values,
)

#: The largest id a key column holds (they are BIGINTs): a larger number names no row, and Postgres refuses it.
MAX_ID = 2**63 - 1


def _in(column: str, values) -> str:
    return f"{column} IN ({sql_values(values)})"


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
    # Where to POST when a document ends, unless its upload named a URL; signed with `callback_secret`.
    callback_url: Mapped[str | None] = mapped_column(String(2048))
    callback_secret: Mapped[str] = mapped_column(
        String(64), server_default=text("replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '')")
    )
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
    # Pages whose text `extract_text` cut at MAX_PAGE_TEXT_CHARS (they had more).
    text_truncated_pages: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    status: Mapped[str] = mapped_column(String(16), server_default=text("'pending'"))
    progress: Mapped[int] = mapped_column(SmallInteger, server_default=text("0"))
    error: Mapped[str | None] = mapped_column(Text)
    ocr_status: Mapped[str] = mapped_column(String(16), server_default=text("'unknown'"))
    ocr_error: Mapped[str | None] = mapped_column(Text)
    ocr_completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Named by the upload: where to POST when this document ends (else the owner's `callback_url`).
    callback_url: Mapped[str | None] = mapped_column(String(2048))
    # The run whose outputs readers see: the last one that completed. A new run replaces them only when it completes.
    results_job_id: Mapped[int | None] = mapped_column(
        ForeignKey("document_queue.id", ondelete="SET NULL", use_alter=True, name="documents_results_job_fk")
    )

    __table_args__ = (
        CheckConstraint(_in("status", DocumentStatus), name="documents_status_valid"),
        CheckConstraint(_in("ocr_status", OcrStatus), name="documents_ocr_status_valid"),
        CheckConstraint("progress BETWEEN 0 AND 100", name="documents_progress_percent"),
        Index("documents_owner_created_idx", "owner_id", text("created_at DESC"), text("id DESC")),
        # Ingest dedupes each batch against the owner's documents by content.
        Index("documents_owner_sha256_idx", "owner_id", "sha256"),
        # The cleanup keeps every run a document shows.
        Index("documents_results_job_idx", "results_job_id"),
    )


class DocumentPage(Base):
    """The text of one page in one run: its text layer (`extract_text`), or what OCR read (`ocr`)."""

    __tablename__ = "document_pages"

    # The run (queue item) that wrote it: a reprocess writes a new set, shown once that run completes.
    job_id: Mapped[int] = mapped_column(
        ForeignKey("document_queue.id", ondelete="CASCADE", name="document_pages_job_fk"), primary_key=True
    )
    page_number: Mapped[int] = mapped_column(Integer, primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"))
    ocr: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    # Whether extract_text cut the page's text at MAX_PAGE_TEXT_CHARS (it had more).
    text_cut: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    # (Declared after `ocr` and `text_cut`: inside the class body this name hides sqlalchemy's `text`.)
    text: Mapped[str] = mapped_column(Text)
    char_count: Mapped[int] = mapped_column(Integer)
    # OCR'd words as [x0, y0, x1, y1, word] in PDF points of the upright page, for the searchable PDF.
    ocr_words: Mapped[list | None] = mapped_column(JSONB)
    # Degrees (clockwise) the page was turned to read upright, from Tesseract's orientation detection.
    ocr_rotation: Mapped[int | None] = mapped_column(SmallInteger)

    __table_args__ = (Index("document_pages_document_idx", "document_id"),)


class IdempotencyKey(Base):
    """The answer given to an upload sent with an `Idempotency-Key`, replayed to a retry within 24 h."""

    __tablename__ = "idempotency_keys"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    # What the first request sent (file, name, type, priority): a different request under the same key is refused.
    request_sha256: Mapped[str] = mapped_column(String(64))
    document_id: Mapped[int | None] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"))
    response_status: Mapped[int | None] = mapped_column(SmallInteger)
    response_body: Mapped[dict | None] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (Index("idempotency_keys_created_idx", "created_at"),)


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

    #: A crash's traceback (operators see it on the job page; never shown on the document).
    error_traceback: Mapped[str | None] = mapped_column(Text)
    processing_time_ms: Mapped[int | None] = mapped_column(BigInteger)
    #: QueueLane: interactive work is admitted before bulk imports (see `admit_pending`).
    lane: Mapped[str] = mapped_column(String(16), server_default=text("'interactive'"))

    __table_args__ = (
        CheckConstraint(_in("status", QueueStatus), name="document_queue_status_valid"),
        CheckConstraint(_in("operation", OPERATIONS), name="document_queue_operation_valid"),
        CheckConstraint(_in("failure_kind", FailureKind), name="document_queue_failure_kind_valid"),
        CheckConstraint(_in("lane", QueueLane), name="document_queue_lane_valid"),
        CheckConstraint("attempts >= 0 AND max_attempts >= 1", name="document_queue_attempts_valid"),
        # At most one live job per document: reprocessing waits for the current run.
        Index(
            "document_queue_one_active_per_document",
            "document_id",
            unique=True,
            postgresql_where=text(_in("status", ACTIVE_QUEUE_STATUSES)),
        ),
        # Admission: per owner and lane, best priority first, oldest first.
        Index(
            "document_queue_pending_lane_idx",
            "owner_id",
            "lane",
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
        # Recent completions for the charts, and old ones for the daily cleanup.
        Index("document_queue_completed_at_idx", "completed_at", postgresql_where=text("status = 'completed'")),
    )


class StageRecord(Base):
    """One stage of one run: its status, attempts, times, units done of total, and checkpoint.

    Written by the queue transitions (`docqueue/queue/stage_records.py`) in the
    same statements that move the job, and by the stage as it commits batches.
    """

    __tablename__ = "document_stage_records"

    job_id: Mapped[int] = mapped_column(ForeignKey("document_queue.id", ondelete="CASCADE"), primary_key=True)
    stage: Mapped[str] = mapped_column(String(32), primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"))
    #: The stage's place in the pipeline, for ordering.
    position: Mapped[int] = mapped_column(SmallInteger)
    status: Mapped[str] = mapped_column(String(16), server_default=text("'pending'"))
    attempts: Mapped[int] = mapped_column(SmallInteger, server_default=text("0"))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: What units_done/units_total count: pages, images, chunks.
    unit: Mapped[str | None] = mapped_column(String(16))
    units_done: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    units_total: Mapped[int | None] = mapped_column(Integer)
    #: The last unit committed (e.g. a page number): a retried attempt resumes after it.
    checkpoint: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    #: Why it failed, or why it was skipped.
    error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        CheckConstraint(_in("status", StageStatus), name="document_stage_records_status_valid"),
        Index("document_stage_records_document_idx", "document_id", "job_id"),
    )


# The stage a document's newest run is at (or ended at), loaded with the document for the list's stage cell.
Document.current_stage = column_property(
    select(QueueItem.stage)
    .where(QueueItem.document_id == Document.id)
    .order_by(QueueItem.id.desc())
    .limit(1)
    .correlate_except(QueueItem)
    .scalar_subquery()
)


class JobEvent(Base):
    """One status or stage change of a queue item, written by a trigger (migration 0007)."""

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
    work; these counters make the dashboard's `today_figures` cost the same at any volume.
    Each completion adds to one of a few slots, so concurrent completions
    seldom wait on the same row.
    """

    __tablename__ = "queue_daily_stats"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    slot: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    completed: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    wait_seconds: Mapped[float] = mapped_column(Double, server_default=text("0"))


# -- results of the later stages (migration 0006), keyed by run like `document_pages` -----------
# `embedding` columns are pgvector's `vector` where the extension exists, else
# `real[]`; they are not mapped here and only `docqueue/results/vectors.py` touches them.


def _run_fk() -> ForeignKey:
    return ForeignKey("document_queue.id", ondelete="CASCADE")


class DocumentImage(Base):
    """One image object of a run (its bytes in the blob store once per sha256), or one skipped with its reason."""

    __tablename__ = "document_images"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    job_id: Mapped[int] = mapped_column(_run_fk())
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"))
    # The PDF object: one row per image object (truth.json's `image_xrefs`), however many pages show it.
    xref: Mapped[int] = mapped_column(Integer)
    # The first page the image appears on.
    page_number: Mapped[int] = mapped_column(Integer)
    # Of the stored bytes; of the raw PDF stream for an image skipped without decoding it.
    sha256: Mapped[str] = mapped_column(String(64))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    format: Mapped[str] = mapped_column(String(16))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    skipped_reason: Mapped[str | None] = mapped_column(Text)
    embedding_model: Mapped[str | None] = mapped_column(String(255))

    __table_args__ = (
        Index("document_images_object_idx", "job_id", "xref", unique=True),
        Index("document_images_document_idx", "document_id"),
    )


class DocumentChunk(Base):
    """An overlapping slice of a run's text, with the pages it spans."""

    __tablename__ = "document_chunks"

    job_id: Mapped[int] = mapped_column(_run_fk(), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"))
    text: Mapped[str] = mapped_column(Text)
    page_start: Mapped[int] = mapped_column(Integer)
    page_end: Mapped[int] = mapped_column(Integer)
    embedding_model: Mapped[str | None] = mapped_column(String(255))

    __table_args__ = (Index("document_chunks_document_idx", "document_id"),)


class DocumentEnrichment(Base):
    """An answer from the chat provider about a run's text or one of its images."""

    __tablename__ = "document_enrichments"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    job_id: Mapped[int] = mapped_column(_run_fk())
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    image_id: Mapped[int | None] = mapped_column(ForeignKey("document_images.id", ondelete="CASCADE"))
    model: Mapped[str] = mapped_column(String(255))
    answer: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        CheckConstraint("kind IN ('product_discovery', 'vision_description')", name="document_enrichments_kind_valid"),
        Index("document_enrichments_subject_idx", "job_id", "kind", text("COALESCE(image_id, 0)"), unique=True),
        Index("document_enrichments_document_idx", "document_id"),
    )


class CallbackDelivery(Base):
    """The POST telling a callback URL that a run of a document ended, with its attempts."""

    __tablename__ = "callback_deliveries"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("document_queue.id", ondelete="CASCADE"), unique=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(String(2048))
    # The exact bytes signed and sent, so every attempt carries the same body and signature.
    payload: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), server_default=text("'pending'"))
    attempts: Mapped[int] = mapped_column(SmallInteger, server_default=text("0"))
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_status_code: Mapped[int | None] = mapped_column(SmallInteger)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint("status IN ('pending', 'delivered', 'failed')", name="callback_deliveries_status_valid"),
        Index("callback_deliveries_due_idx", "next_attempt_at", postgresql_where=text("status = 'pending'")),
        Index("callback_deliveries_document_idx", "document_id", text("id DESC")),
    )


class QueueMinuteStats(Base):
    """Completions per minute, kept by the same trigger as `QueueDailyStats`: the dashboard's charts and ETA."""

    __tablename__ = "queue_minute_stats"

    minute: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    slot: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    completed: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    wait_seconds: Mapped[float] = mapped_column(Double, server_default=text("0"))
    processing_ms: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))


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


class OcrRange(Base):
    """Some pages of a scan's OCR that any worker may claim and read (`docqueue/queue/ocr_ranges.py`)."""

    __tablename__ = "ocr_ranges"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("document_queue.id", ondelete="CASCADE"))
    # The OCR stage's claim the range belongs to: its pages are written under that lease only.
    lease_token: Mapped[str] = mapped_column(UUID(as_uuid=False))
    pages: Mapped[list[int]] = mapped_column(ARRAY(Integer))
    status: Mapped[str] = mapped_column(String(16), server_default=text("'pending'"))
    worker_id: Mapped[str | None] = mapped_column(String(255))
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        CheckConstraint(_in("status", OcrRangeStatus), name="ocr_ranges_status_valid"),
        Index("ocr_ranges_job_idx", "job_id", "status"),
    )


class WorkerHeartbeat(Base):
    """A live worker process, as its last heartbeat saw it: lets the clock notice work with no worker."""

    __tablename__ = "worker_heartbeats"

    worker_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    running: Mapped[int] = mapped_column(Integer, server_default=text("0"))


class IngestRun(Base):
    """One bulk import (`docqueue ingest` or a folder upload): what it saw, added and refused."""

    __tablename__ = "ingest_runs"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    #: "cli" or "browser".
    source: Mapped[str] = mapped_column(String(16))
    #: The paths given, one a line.
    paths: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), server_default=text("'running'"))
    files_seen: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    files_added: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    bytes_added: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    duplicates: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    rejected: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    #: Moves with each committed batch: a run killed outright shows when it last made progress.
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint("source IN ('cli', 'browser')", name="ingest_runs_source_valid"),
        CheckConstraint(_in("status", IngestRunStatus), name="ingest_runs_status_valid"),
        Index("ingest_runs_started_idx", text("started_at DESC"), text("id DESC")),
    )


class IngestRejection(Base):
    """A file an ingest run did not take, and why."""

    __tablename__ = "ingest_rejections"

    run_id: Mapped[int] = mapped_column(ForeignKey("ingest_runs.id", ondelete="CASCADE"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    path: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)
