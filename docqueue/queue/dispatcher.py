"""The dispatcher: finds work in Postgres and hands it to the broker.

It runs on the clock every few seconds, after each enqueue and completion,
and on `POST /api/queue/process`. It is safe to run anywhere at any time:
one transaction-scoped advisory lock lets a single run proceed at once.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import sentry_sdk
from sqlalchemy.orm import Session

from docqueue.queue.messages import send_stage_messages
from docqueue.queue.service import DocumentQueueService

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DispatchReport:
    ran: bool
    recovered: int = 0
    failed_stale: int = 0
    redispatched: int = 0
    admitted: int = 0
    sent: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


def process_document_queue(session: Session) -> DispatchReport:
    """Recover stale leases, re-send lost messages, admit pending jobs; commit, then send.

    Commits `session`. Returns `ran=False` when another dispatcher held the
    lock; whatever that run did not see, the clock's next run picks up.
    """
    queue = DocumentQueueService(session)
    if not queue.lock_dispatcher():
        session.rollback()
        return DispatchReport(ran=False)
    recovered = queue.recover_stale_jobs()
    redispatched = queue.redispatch_lost_messages()
    admitted = queue.admit_pending()
    session.commit()
    if recovered.requeued or recovered.failed:
        # A worker died or froze mid-stage: worth an operator's look even though the work resumes.
        sentry_sdk.capture_message(
            f"Recovered stale jobs: {recovered.requeued} back to pending, {recovered.failed} failed out of attempts",
            level="warning",
        )
    sent = send_stage_messages(redispatched + admitted)
    return DispatchReport(
        ran=True,
        recovered=recovered.requeued,
        failed_stale=recovered.failed,
        redispatched=len(redispatched),
        admitted=len(admitted),
        sent=sent,
    )


def nudge_dispatcher(session: Session) -> None:
    """Run the dispatcher now for lower latency, never failing the caller.

    Used right after an upload or a finished job has committed: an error here
    must not turn that success into a failure (a client would retry and
    upload twice). The clock's next tick does whatever this run could not.
    """
    try:
        process_document_queue(session)
    except Exception:
        session.rollback()
        logger.exception("dispatcher nudge failed; the clock will dispatch instead")
