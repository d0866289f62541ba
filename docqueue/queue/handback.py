"""Handing a claimed item back on shutdown, so another worker resumes it at once.

Rules:

- Only the holder of the lease can hand back (`HOLDS_LEASE`), in one
  conditional UPDATE: `processing` -> `queued` at the same stage, with a
  fresh `dispatched_at`; the caller sends the returned dispatch after commit.
- The attempt is not burned: a deploy is not the document's fault, so
  `attempts` goes back down by the one the claim took.
- The attempt history records it as `handed_back` in the same transaction.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from docqueue.jobs import Claim, Dispatch, LeaseLost
from docqueue.queue.attempts import close_attempt
from docqueue.queue.fragments import RELEASE_LEASE
from docqueue.queue.lease import HOLDS_LEASE
from docqueue.statuses import AttemptOutcome, QueueStatus

_HAND_BACK = f"""
    UPDATE document_queue SET status = '{QueueStatus.QUEUED}', attempts = greatest(attempts - 1, 0), dispatched_at = now(),
           {RELEASE_LEASE}
    WHERE {HOLDS_LEASE}
    RETURNING id, stage
"""


def hand_back(
    session: Session, claim: Claim, why: str = "the worker was shutting down (deploy or restart)"
) -> Dispatch:
    """Return the claimed item to `queued`, its attempt closed as handed back `why`; raises LeaseLost if the claim
    no longer holds."""
    close_attempt(session, claim, AttemptOutcome.HANDED_BACK, message=why)
    row = session.execute(text(_HAND_BACK), {"job_id": claim.job_id, "lease_token": claim.lease_token}).first()
    if row is None:
        raise LeaseLost(f"job {claim.job_id} lost its lease before it could be handed back")
    return Dispatch(job_id=row.id, stage=row.stage)
