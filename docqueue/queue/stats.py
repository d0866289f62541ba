"""The queue's headline figures, for the API and the admin page."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from docqueue.settings import get_settings

_STATS = """
    WITH today AS (
        SELECT COALESCE(sum(completed), 0)::bigint AS completed,
               sum(wait_seconds) / NULLIF(sum(completed), 0) / 60 AS avg_wait
        FROM queue_daily_stats WHERE day = current_date
    )
    SELECT
        (SELECT count(*) FROM document_queue WHERE status = 'pending') AS waiting,
        (SELECT count(*) FROM document_queue WHERE status = 'queued') AS queued,
        (SELECT count(*) FROM document_queue WHERE status = 'processing') AS processing,
        (SELECT count(*) FROM document_queue WHERE status = 'failed') AS failed,
        today.completed AS completed_today,
        today.avg_wait AS avg_wait_minutes,
        -- Two single-status minimums: each is the first entry of the (status, created_at) index.
        extract(epoch FROM now() - LEAST(
            (SELECT min(created_at) FROM document_queue WHERE status = 'pending'),
            (SELECT min(created_at) FROM document_queue WHERE status = 'queued'))) / 60
            AS oldest_pending_minutes
    FROM today
"""


def queue_stats(session: Session) -> dict:
    """Counts and wait times.

    Counts of live states are index-only scans of those states' rows;
    today's completions and waits come from the counters a trigger keeps
    in `queue_daily_stats`, so neither grows with the table's history
    nor with a busy day. The wait is from upload to first claim, over
    the jobs completed today (UTC days of the database's `current_date`).
    """
    row = session.execute(text(_STATS)).one()
    return {
        "pending": row.waiting + row.queued,
        "processing": row.processing,
        "failed": row.failed,
        "completed_today": row.completed_today,
        "avg_wait_time_minutes": round(float(row.avg_wait_minutes or 0), 2),
        "oldest_pending_minutes": round(float(row.oldest_pending_minutes or 0), 2),
        "queued": row.queued,
        "capacity": get_settings().ocr_concurrent_jobs,
    }
