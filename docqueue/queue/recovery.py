"""Finding messages Redis lost, sooner than the blind re-send.

Rules:

- Postgres says which jobs were admitted (`queued`); Redis is only the
  transport and can lose messages (a flush, a restart without
  persistence). A `queued` job still unclaimed after
  LOST_MESSAGE_AFTER_SECONDS (a few clock ticks) whose message Redis no
  longer holds is sent again. The blind re-send after
  REDISPATCH_AFTER_SECONDS (`DocumentQueueService.redispatch_lost_messages`)
  stays as the backstop, for a message held by a worker that stopped.
- Sending again is harmless: claims are fenced, so only one message per
  job and stage can win, and a duplicate is dropped.
- Rows another transaction holds are skipped (SKIP LOCKED), never waited
  for: a frozen process must not stall the clock.

Like the queue service, these run in the caller's transaction and never commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from sqlalchemy import text
from sqlalchemy.orm import Session

from docqueue.jobs import Dispatch
from docqueue.statuses import QueueStatus


@dataclass(frozen=True)
class Unclaimed:
    job_id: int
    stage: str


# Queued longer than a few ticks: long enough for any live message to have been sent and seen by Redis.
_UNCLAIMED = f"""
    SELECT id, stage FROM document_queue
    WHERE status = '{QueueStatus.QUEUED}' AND dispatched_at < now() - make_interval(secs => :after)
    ORDER BY dispatched_at LIMIT :batch
    FOR UPDATE SKIP LOCKED
"""

# The same rows, now locked by this transaction: still queued, so a new message is due.
_RESENT = f"""
    UPDATE document_queue SET dispatched_at = now()
    WHERE id = ANY(:job_ids) AND status = '{QueueStatus.QUEUED}'
    RETURNING id, stage
"""


def resend_lost_messages(
    session: Session, held_messages: Callable[[], set[tuple[int, str]]], after_seconds: int, batch: int
) -> list[Dispatch]:
    """Queued jobs unclaimed for `after_seconds` whose message Redis no longer holds; send the dispatches after commit.

    `held_messages()` returns (job id, stage) of every message the broker
    holds; it is asked only when some job has waited that long.
    """
    waiting = [Unclaimed(*row) for row in session.execute(text(_UNCLAIMED), {"after": after_seconds, "batch": batch})]
    if not waiting:
        return []
    held = held_messages()
    lost = [job.job_id for job in waiting if (job.job_id, job.stage) not in held]
    if not lost:
        return []
    rows = session.execute(text(_RESENT), {"job_ids": lost})
    return [Dispatch(job_id=row.id, stage=row.stage) for row in rows]
