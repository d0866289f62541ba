"""The queue: its items (one per run of a document), their event log, and the operator's switches."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    SmallInteger,
    String,
    Text,
    func,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.orm import Mapped, column_property, mapped_column

from docqueue.models.base import Base, sql_in
from docqueue.models.documents import Document
from docqueue.statuses import (
    ACTIVE_QUEUE_STATUSES,
    IN_FLIGHT_QUEUE_STATUSES,
    OPERATIONS,
    FailureKind,
    QueueLane,
    QueueStatus,
)


class QueueItem(Base):
    """One request to run a document through the pipeline."""

    __tablename__ = "document_queue"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"))
    # Denormalised from the document so the dispatcher counts per-user capacity from one table.
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    operation: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), server_default=text(f"'{QueueStatus.PENDING}'"))
    # The pipeline stage to run next (or running now); survives crashes so work resumes there.
    stage: Mapped[str] = mapped_column(String(32))
    priority: Mapped[int] = mapped_column(SmallInteger)
    # Attempts at the current stage: each claim increments it, each stage handoff resets it.
    attempts: Mapped[int] = mapped_column(SmallInteger, server_default=text("0"))
    max_attempts: Mapped[int] = mapped_column(SmallInteger)
    file_size: Mapped[int] = mapped_column(BigInteger)
    # Requests this run's AI stages sent (committed with their answers): bounded by MAX_AI_CALLS_PER_DOCUMENT.
    ai_calls: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
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
    lane: Mapped[str] = mapped_column(String(16), server_default=text(f"'{QueueLane.INTERACTIVE}'"))

    __table_args__ = (
        CheckConstraint(sql_in("status", QueueStatus), name="document_queue_status_valid"),
        CheckConstraint(sql_in("operation", OPERATIONS), name="document_queue_operation_valid"),
        CheckConstraint(sql_in("failure_kind", FailureKind), name="document_queue_failure_kind_valid"),
        CheckConstraint(sql_in("lane", QueueLane), name="document_queue_lane_valid"),
        CheckConstraint("attempts >= 0 AND max_attempts >= 1", name="document_queue_attempts_valid"),
        # At most one live job per document: reprocessing waits for the current run.
        Index(
            "document_queue_one_active_per_document",
            "document_id",
            unique=True,
            postgresql_where=text(sql_in("status", ACTIVE_QUEUE_STATUSES)),
        ),
        # Admission: per owner and lane, best priority first, oldest first.
        Index(
            "document_queue_pending_lane_idx",
            "owner_id",
            "lane",
            text("priority DESC"),
            "created_at",
            "id",
            postgresql_where=text(f"status = '{QueueStatus.PENDING}'"),
        ),
        Index(
            "document_queue_in_flight_idx",
            "owner_id",
            "status",
            postgresql_where=text(sql_in("status", IN_FLIGHT_QUEUE_STATUSES)),
        ),
        Index(
            "document_queue_lease_idx",
            "lease_expires_at",
            postgresql_where=text(f"status = '{QueueStatus.PROCESSING}'"),
        ),
        Index(
            "document_queue_dispatched_idx",
            "dispatched_at",
            postgresql_where=text(f"status = '{QueueStatus.QUEUED}'"),
        ),
        Index("document_queue_status_created_idx", "status", "created_at"),
        # get_pending_items: the global admission order.
        Index(
            "document_queue_pending_order_idx",
            text("priority DESC"),
            "created_at",
            "id",
            postgresql_where=text(f"status = '{QueueStatus.PENDING}'"),
        ),
        Index("document_queue_document_idx", "document_id", text("id DESC")),
        Index("document_queue_owner_id_idx", "owner_id", text("id DESC")),
        # Recent completions for the charts, and old ones for the daily cleanup.
        Index(
            "document_queue_completed_at_idx",
            "completed_at",
            postgresql_where=text(f"status = '{QueueStatus.COMPLETED}'"),
        ),
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


class QueueControl(Base):
    """The single row of queue-wide switches an operator flips."""

    __tablename__ = "queue_control"

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True, server_default=text("1"))
    admission_paused: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))

    __table_args__ = (CheckConstraint("id = 1", name="queue_control_single_row"),)


class PausedWork(Base):
    """A lane or a stage an operator holds (`queue/pausing.py`); deleting the row resumes it."""

    __tablename__ = "paused_work"

    #: "lane" (QueueLane) or "stage" (a pipeline stage's name).
    scope: Mapped[str] = mapped_column(String(8), primary_key=True)
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    paused_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    #: Who held it: an operator's email, or "the command line".
    paused_by: Mapped[str] = mapped_column(Text)

    __table_args__ = (CheckConstraint("scope IN ('lane', 'stage')", name="paused_work_scope_valid"),)


class FrozenSelection(Base):
    """The job ids a bulk action's preview counted, so the confirmed action touches exactly those."""

    __tablename__ = "frozen_selections"

    token: Mapped[str] = mapped_column(UUID(as_uuid=False), primary_key=True, server_default=text("gen_random_uuid()"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    description: Mapped[str] = mapped_column(Text)
    job_ids: Mapped[list[int]] = mapped_column(ARRAY(BigInteger))
