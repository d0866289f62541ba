"""Bulk imports and the files they refused."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, DateTime, ForeignKey, Index, Integer, String, Text, func, text
from sqlalchemy.orm import Mapped, mapped_column

from docqueue.models.base import Base, sql_in
from docqueue.statuses import IngestRunStatus


class IngestRun(Base):
    """One bulk import (`docqueue ingest` or a folder upload): what it saw, added and refused."""

    __tablename__ = "ingest_runs"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    #: "cli" or "browser".
    source: Mapped[str] = mapped_column(String(16))
    #: The paths given, one a line.
    paths: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), server_default=text(f"'{IngestRunStatus.RUNNING}'"))
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
        CheckConstraint(sql_in("status", IngestRunStatus), name="ingest_runs_status_valid"),
        Index("ingest_runs_started_idx", text("started_at DESC"), text("id DESC")),
    )


class IngestRejection(Base):
    """A file an ingest run did not take, and why."""

    __tablename__ = "ingest_rejections"

    run_id: Mapped[int] = mapped_column(ForeignKey("ingest_runs.id", ondelete="CASCADE"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    path: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)
