"""Completion counters the dashboard reads instead of counting jobs."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Date, DateTime, Double, SmallInteger, text
from sqlalchemy.orm import Mapped, mapped_column

from docqueue.models.base import Base


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


class QueueMinuteStats(Base):
    """Completions per minute, kept by the same trigger as `QueueDailyStats`: the dashboard's charts and ETA."""

    __tablename__ = "queue_minute_stats"

    minute: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    slot: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    completed: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    wait_seconds: Mapped[float] = mapped_column(Double, server_default=text("0"))
    processing_ms: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
