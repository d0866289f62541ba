"""Deferring a claimed stage while an outside service is unavailable.

Rules (beside `service.py`'s, which still hold):

- Only the holder of the current lease may defer (`HOLDS_LEASE`), in one
  conditional UPDATE, like every other transition.
- Deferral is processing -> pending with `run_after` = when the service's
  breaker lets a call through again; the dispatcher admits it then.
- It does not use up an attempt: the claim's increment is taken back, so a
  long outage never fails a document that never got to try.
- The stage's record waits with it (`pending`, the attempt taken back, the
  reason as its error), in the same statement.
- The document says why it waits ("waiting: embeddings provider unavailable
  until 12:04 UTC") in `error`, as a retrying failure does.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import text
from sqlalchemy.orm import Session

from docqueue.jobs import Claim, LeaseLost
from docqueue.queue.fragments import RELEASE_LEASE, documents_follow
from docqueue.queue.lease import HOLDS_LEASE
from docqueue.statuses import FailureKind, QueueStatus, StageStatus

# The claimed stage's record waits with its job: pending again, its attempt taken back, the reason shown.
_RECORD_WAITS = f"""
    UPDATE document_stage_records r SET status = '{StageStatus.PENDING}', attempts = GREATEST(r.attempts - 1, 0),
           error = deferred.error_message
    FROM deferred WHERE r.job_id = deferred.id AND r.stage = deferred.stage"""


def defer_claim(session: Session, claim: Claim, until: datetime, reason: str) -> None:
    """Hand the claimed job back to `pending` until `until`, attempts as before the claim; LeaseLost if gone."""
    row = session.execute(
        text(
            f"""
            WITH deferred AS (
                UPDATE document_queue SET status = '{QueueStatus.PENDING}', run_after = GREATEST(:until, now()),
                       -- Take back the claim's increment: waiting for a service is not an attempt.
                       attempts = GREATEST(attempts - 1, 0),
                       error_message = :reason, failure_kind = '{FailureKind.TRANSIENT}', dispatched_at = NULL, {RELEASE_LEASE}
                WHERE {HOLDS_LEASE}
                RETURNING id, document_id, stage, status, error_message
            ), document AS (
                {documents_follow("deferred", error="deferred.error_message")}
            ), record AS ({_RECORD_WAITS}
            )
            SELECT id FROM deferred
            """
        ),
        {"until": until, "reason": reason, "job_id": claim.job_id, "lease_token": claim.lease_token},
    ).first()
    if row is None:
        raise LeaseLost(f"job {claim.job_id} lost its lease before it could be deferred")
