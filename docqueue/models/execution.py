"""How a queue item's work gets done: its stages, each attempt at one, OCR page ranges, and live workers."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.orm import Mapped, mapped_column

from docqueue.models.base import Base, sql_in
from docqueue.statuses import AttemptOutcome, OcrRangeStatus, StageStatus


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
    status: Mapped[str] = mapped_column(String(16), server_default=text(f"'{StageStatus.PENDING}'"))
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
        CheckConstraint(sql_in("status", StageStatus), name="document_stage_records_status_valid"),
        Index("document_stage_records_document_idx", "document_id", "job_id"),
    )


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
    outcome: Mapped[str] = mapped_column(String(16), server_default=text(f"'{AttemptOutcome.RUNNING}'"))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    duration_ms: Mapped[int | None] = mapped_column(BigInteger)
    error_class: Mapped[str | None] = mapped_column(String(255))
    error_message: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        CheckConstraint(sql_in("outcome", AttemptOutcome), name="stage_attempts_outcome_valid"),
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
    status: Mapped[str] = mapped_column(String(16), server_default=text(f"'{OcrRangeStatus.PENDING}'"))
    worker_id: Mapped[str | None] = mapped_column(String(255))
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        CheckConstraint(sql_in("status", OcrRangeStatus), name="ocr_ranges_status_valid"),
        Index("ocr_ranges_job_idx", "job_id", "status"),
    )


class WorkerHeartbeat(Base):
    """A live worker process, as its last heartbeat saw it: lets the clock notice work with no worker."""

    __tablename__ = "worker_heartbeats"

    worker_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    running: Mapped[int] = mapped_column(Integer, server_default=text("0"))
