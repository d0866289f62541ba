"""Today's completions, their average wait and the oldest waiting job: the dashboard's figures besides its counts."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from docqueue.statuses import QueueStatus

# The whole queue's: today's figures from the counters a trigger keeps in `queue_daily_stats` (a few rows
# whatever the day's volume), and two single-status minimums, each the first entry of the (status, created_at) index.
_WHOLE_QUEUE = f"""
    WITH today AS (
        SELECT COALESCE(sum(completed), 0)::bigint AS completed,
               sum(wait_seconds) / NULLIF(sum(completed), 0) / 60 AS avg_wait
        FROM queue_daily_stats WHERE day = current_date
    )
    SELECT
        today.completed AS completed_today,
        today.avg_wait AS avg_wait,
        extract(epoch FROM now() - LEAST(
            (SELECT min(created_at) FROM document_queue WHERE status = '{QueueStatus.PENDING}'),
            (SELECT min(created_at) FROM document_queue WHERE status = '{QueueStatus.QUEUED}'))) / 60 AS oldest
    FROM today
"""

# One owner's: the counters are not kept per owner, so their rows of today.
_OWNER = f"""
    SELECT
        (SELECT count(*) FROM document_queue WHERE status = '{QueueStatus.COMPLETED}' AND owner_id = :owner_id
            AND completed_at >= current_date) AS completed_today,
        (SELECT avg(extract(epoch FROM started_at - created_at)) / 60 FROM document_queue
            WHERE status = '{QueueStatus.COMPLETED}' AND owner_id = :owner_id AND completed_at >= current_date) AS avg_wait,
        (SELECT extract(epoch FROM now() - min(created_at)) / 60 FROM document_queue
            WHERE status IN ('{QueueStatus.PENDING}', '{QueueStatus.QUEUED}') AND owner_id = :owner_id) AS oldest
"""


def today_figures(session: Session, owner_id: int | None = None) -> tuple[int, float, float]:
    """(completed today, their average wait in minutes, the oldest waiting job's age in minutes) in one statement.

    For the whole queue (`owner_id` None) or one owner. The wait is from
    upload to first claim; days are UTC days of the database's `current_date`.
    """
    sql, params = (_WHOLE_QUEUE, {}) if owner_id is None else (_OWNER, {"owner_id": owner_id})
    row = session.execute(text(sql), params).one()
    return int(row.completed_today), round(float(row.avg_wait or 0), 2), round(float(row.oldest or 0), 2)
