"""The dispatcher: finds work in Postgres and hands it to the broker.

It runs after each enqueue and completion (a nudge), on the clock, and on
`POST /api/queue/process`. It is safe to run anywhere at any time: one
transaction-scoped advisory lock lets a single run proceed at once, and a
caller that finds it taken leaves a dispatch request that the holder sees
(`dispatch_requests`), so freed capacity never waits for the clock's tick.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

from sqlalchemy.orm import Session

from docqueue.queue import dispatch_requests
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
    #: Someone asked for a run while this one worked: the clock was notified to run again.
    more_requested: bool = False

    def as_dict(self) -> dict:
        return asdict(self)


def process_document_queue(session: Session) -> DispatchReport:
    """Recover stale leases, re-send lost messages, admit pending jobs; commit, then send.

    Commits `session`. Returns `ran=False` when another dispatcher held the
    lock: that one sees this call's request and makes sure a run follows.
    """
    dispatch_requests.request_dispatch(session)
    queue = DocumentQueueService(session)
    if not queue.lock_dispatcher():
        session.rollback()
        return DispatchReport(ran=False)
    seen = dispatch_requests.latest_request(session)
    recovered = queue.recover_stale_jobs()
    redispatched = queue.redispatch_lost_messages()
    admitted = queue.admit_pending()
    session.commit()
    sent = send_stage_messages(redispatched + admitted)
    more_requested = dispatch_requests.latest_request(session) != seen
    if more_requested:
        dispatch_requests.notify_clock(session)
        session.commit()
    return DispatchReport(
        ran=True,
        recovered=recovered.requeued,
        failed_stale=recovered.failed,
        redispatched=len(redispatched),
        admitted=len(admitted),
        sent=sent,
        more_requested=more_requested,
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
