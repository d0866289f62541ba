"""Reading the bulk lane: how much of an import still waits or runs.

The admission rule between lanes is `DocumentQueueService.admit_pending`'s;
this module only watches the result (`docqueue ingest --monitor`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import text
from sqlalchemy.orm import Session

from docqueue.queue.fragments import FINISHED, LIVE
from docqueue.statuses import QueueLane


def bulk_backlog(session: Session, owner_id: int) -> int:
    """The owner's bulk queue items not finished yet (pending, queued or processing).

    The pending ones are an index-only count on the admission index.
    """
    return session.execute(
        text(
            "SELECT count(*) FROM document_queue "
            f"WHERE owner_id = :owner AND lane = '{QueueLane.BULK}' AND status IN ({LIVE})"
        ),
        {"owner": owner_id},
    ).scalar_one()


def bulk_outcomes(session: Session, owner_id: int, since: datetime) -> dict[str, int]:
    """How many of the owner's bulk queue items finished since `since`, by final status (completed, failed, ...)."""
    rows = session.execute(
        text(
            f"SELECT status, count(*) FROM document_queue WHERE owner_id = :owner AND lane = '{QueueLane.BULK}' "
            f"AND status IN ({FINISHED}) AND completed_at >= :since GROUP BY status"
        ),
        {"owner": owner_id, "since": since},
    )
    return dict(rows.all())
