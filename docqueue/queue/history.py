"""The recent past, for the dashboard's charts and `/metrics`: completions, waits and stage timings.

Charts read the per-minute counters the completion trigger keeps
(`queue_minute_stats`, at most 1,440 × 16 rows a day), never the jobs;
stage timings read the last minutes of `job_events`.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.orm import Session

from docqueue.statuses import QueueStatus


@dataclass(frozen=True)
class Series:
    """Chart data: bucket start times (Unix seconds), completions and average wait (seconds) per bucket."""

    times: list[int]
    completed: list[int]
    avg_wait_seconds: list[float]


def completion_series(session: Session, hours: int) -> Series:
    """Completions and average wait per minute (1 hour) or per 15 minutes (longer), from the minute counters."""
    bucket = 60 if hours <= 1 else 900
    rows = session.execute(
        text(
            """
            WITH buckets AS (
                SELECT generate_series(
                    to_timestamp(floor(extract(epoch FROM now() - make_interval(hours => :hours)) / :bucket) * :bucket),
                    now(), make_interval(secs => :bucket)) AS start
            )
            SELECT extract(epoch FROM b.start)::bigint, COALESCE(sum(s.completed), 0)::bigint,
                   COALESCE(sum(s.wait_seconds) / NULLIF(sum(s.completed), 0), 0)
            FROM buckets b
            LEFT JOIN queue_minute_stats s
                   ON s.minute >= b.start AND s.minute < b.start + make_interval(secs => :bucket)
            GROUP BY b.start ORDER BY b.start
            """
        ),
        {"hours": hours, "bucket": bucket},
    ).all()
    return Series([r[0] for r in rows], [r[1] for r in rows], [round(float(r[2]), 2) for r in rows])


@dataclass(frozen=True)
class StageTiming:
    """One stage's finished attempts over a recent window: how many, how long on average, how many failed."""

    stage: str
    attempts: int
    avg_seconds: float
    failed: int


def stage_timings(session: Session, minutes: int = 15) -> list[StageTiming]:
    """Per stage, the attempts that ended in the last `minutes`, from the job events' claim-to-end times."""
    rows = session.execute(
        text(
            f"""
            WITH recent AS (
                SELECT job_id, stage, from_status, to_status, at,
                       lag(at) OVER (PARTITION BY job_id ORDER BY id) AS claimed_at,
                       lag(to_status) OVER (PARTITION BY job_id ORDER BY id) AS claimed
                FROM job_events WHERE at >= now() - make_interval(mins => :minutes) - interval '1 hour'
            )
            SELECT stage, count(*), avg(extract(epoch FROM at - claimed_at)),
                   count(*) FILTER (WHERE to_status IN ('{QueueStatus.PENDING}', '{QueueStatus.FAILED}'))
            FROM recent
            WHERE from_status = '{QueueStatus.PROCESSING}' AND claimed = '{QueueStatus.PROCESSING}'
              AND at >= now() - make_interval(mins => :minutes)
            GROUP BY stage ORDER BY stage
            """
        ),
        {"minutes": minutes},
    )
    return [StageTiming(row[0], row[1], round(float(row[2] or 0), 3), row[3]) for row in rows]
