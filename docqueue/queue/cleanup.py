"""Daily cleanup: completed queue items older than COMPLETED_RETENTION_DAYS that no document shows are deleted.

Rules:

- Only `completed` rows go; failed ones stay for operators to requeue or read.
- Never the run a document shows (`documents.results_job_id`): a run's pages,
  chunks, images and answers belong to its queue row (ON DELETE CASCADE), so
  deleting it would empty the document. What goes is the runs a reprocess
  replaced, and their history.
- Each batch is its own short transaction of at most QUEUE_BATCH_SIZE rows,
  picked with SKIP LOCKED, so the cleanup never holds many locks or waits
  on a worker. Their attempt history goes with them (ON DELETE CASCADE).
- Worker presence rows not refreshed for a day are removed too.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from docqueue.settings import get_settings
from docqueue.statuses import QueueStatus

# One batch, oldest first, through the partial index on completed rows.
_DELETE_OLD_COMPLETED = f"""
    DELETE FROM document_queue WHERE id IN (
        SELECT id FROM document_queue
        WHERE status = '{QueueStatus.COMPLETED}' AND completed_at < now() - make_interval(days => :days)
          AND NOT EXISTS (SELECT 1 FROM documents d WHERE d.results_job_id = document_queue.id)
        ORDER BY completed_at LIMIT :batch
        FOR UPDATE SKIP LOCKED)
"""

_DELETE_GONE_WORKERS = "DELETE FROM worker_heartbeats WHERE last_seen_at < now() - interval '1 day'"


def delete_old_completed(session_factory) -> int:
    """Delete old completed queue rows batch by batch, committing each; return how many went.

    `session_factory` is a context manager giving a committing session (`db.session_scope`).
    """
    settings = get_settings()
    deleted = 0
    while True:
        with session_factory() as session:
            batch = _delete_batch(session, settings.completed_retention_days, settings.queue_batch_size)
        deleted += batch
        if batch < settings.queue_batch_size:
            break
    with session_factory() as session:
        session.execute(text(_DELETE_GONE_WORKERS))
    return deleted


def _delete_batch(session: Session, days: int, batch: int) -> int:
    return session.execute(text(_DELETE_OLD_COMPLETED), {"days": days, "batch": batch}).rowcount
