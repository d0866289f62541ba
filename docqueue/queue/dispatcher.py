"""The dispatcher: finds work in Postgres and hands it to the broker.

It runs on the clock every few seconds, after each enqueue and completion,
and on `POST /api/queue/process`. It is safe to run anywhere at any time:
one transaction-scoped advisory lock lets a single run proceed at once.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from sqlalchemy.orm import Session

from docqueue.queue.messages import send_stage_messages
from docqueue.queue.service import DocumentQueueService


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
    sent = send_stage_messages(redispatched + admitted)
    return DispatchReport(
        ran=True,
        recovered=recovered.requeued,
        failed_stale=recovered.failed,
        redispatched=len(redispatched),
        admitted=len(admitted),
        sent=sent,
    )
