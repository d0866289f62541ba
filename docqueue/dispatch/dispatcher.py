"""The dispatcher: finds work in Postgres and hands it to the broker.

It runs after each enqueue and completion (a nudge), on the clock, and on
`POST /api/queue/process`. It is safe to run anywhere at any time: one
transaction-scoped advisory lock lets a single run proceed at once, and a
caller that finds it taken leaves a dispatch request that the holder sees
(`dispatch_requests`), so freed capacity never waits for the clock's tick.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass

import redis.exceptions
import sentry_sdk
from sqlalchemy.orm import Session

from docqueue.dispatch.messages import held_messages, in_messages, send_batches, send_stage_messages
from docqueue.jobs import Dispatch, RecoveryCounts
from docqueue.queue import dispatch_requests
from docqueue.queue.heartbeats import live_workers
from docqueue.queue.recovery import resend_lost_messages
from docqueue.queue.service import DocumentQueueService
from docqueue.settings import get_settings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DispatchReport:
    ran: bool
    recovered: int = 0
    failed_stale: int = 0
    redispatched: int = 0
    #: Queued jobs whose message Redis no longer held (lost in a flush or restart).
    resent_lost: int = 0
    admitted: int = 0
    sent: int = 0
    #: Someone asked for a run while this one worked: the clock was notified to run again.
    more_requested: bool = False
    #: The admitted jobs the caller keeps to claim itself (`keep`): no message was sent for them.
    kept: list[Dispatch] | None = None

    def as_dict(self) -> dict:
        return {name: value for name, value in asdict(self).items() if name != "kept"}


def process_document_queue(
    session: Session, maintenance: bool = True, keep: Callable[[Dispatch], bool] | None = None
) -> DispatchReport:
    """Recover stale leases, re-send lost messages, make room for users with nothing in flight, admit pending jobs;
    commit, then send.

    Messages are re-sent when Redis no longer holds them, after
    LOST_MESSAGE_AFTER_SECONDS; any message unclaimed after
    REDISPATCH_AFTER_SECONDS is re-sent blindly. If Redis cannot be read,
    only the blind re-send runs. Without `maintenance` it only admits: what
    a nudge needs, leaving recovery and re-sends to the clock's runs.

    Commits `session`. Returns `ran=False` when another dispatcher held the
    lock: that one sees this call's request and makes sure a run follows.
    Admitted jobs travel several to a message where the capacity allows
    (`jobs_per_message`). With `keep`, the first message's worth of admitted
    jobs whose first job it accepts is not sent but returned in the report's
    `kept`, for the caller to claim itself (`nudge_dispatcher`).
    """
    kept = None
    dispatch_requests.request_dispatch(session)
    queue = DocumentQueueService(session)
    if not queue.lock_dispatcher():
        session.rollback()
        return DispatchReport(ran=False)
    seen = dispatch_requests.latest_request(session)
    if maintenance:
        recovered = queue.recover_stale_jobs()
        redispatched = queue.redispatch_lost_messages()
        resent = _resend_lost(session, queue)
    else:
        recovered, redispatched, resent = RecoveryCounts(requeued=0, failed=0), [], []
    queue.make_room()
    admitted = queue.admit_pending()
    session.commit()
    if recovered.requeued or recovered.failed:
        # A worker died or froze mid-stage: worth an operator's look even though the work resumes.
        sentry_sdk.capture_message(
            f"Recovered stale jobs: {recovered.requeued} back to pending, {recovered.failed} failed out of attempts",
            level="warning",
        )
    batches = in_messages(admitted, jobs_per_message(session, len(admitted)))
    if keep is not None:
        kept = next((batch for batch in batches if keep(batch[0])), None)
        batches = [batch for batch in batches if batch is not kept]
    sent = send_stage_messages(redispatched + resent) + send_batches(batches)
    more_requested = dispatch_requests.latest_request(session) != seen
    if more_requested:
        dispatch_requests.notify_clock(session)
        session.commit()
    return DispatchReport(
        ran=True,
        recovered=recovered.requeued,
        failed_stale=recovered.failed,
        redispatched=len(redispatched),
        resent_lost=len(resent),
        admitted=len(admitted) - len(kept or ()),
        sent=sent,
        more_requested=more_requested,
        kept=kept,
    )


def jobs_per_message(session: Session, admitted: int) -> int:
    """How many of one owner's admitted jobs share a stage message (at most JOBS_PER_MESSAGE).

    A message's jobs run one after another on one thread, so several go to a
    message only while the in-flight capacity (OCR_CONCURRENT_JOBS) exceeds
    the live workers' threads: each thread's share of the capacity. Below
    that, one job a message, so that no thread idles while another holds
    several. The live workers are asked only when more than one job was admitted.
    """
    settings = get_settings()
    if admitted <= 1 or settings.jobs_per_message <= 1:
        return 1
    threads = max(live_workers(session), 1) * settings.worker_threads
    return max(1, min(settings.jobs_per_message, settings.ocr_concurrent_jobs // threads))


def _resend_lost(session: Session, queue: DocumentQueueService) -> list[Dispatch]:
    settings = queue.settings
    try:
        with session.begin_nested():
            return resend_lost_messages(
                session, held_messages, settings.lost_message_after_seconds, settings.queue_batch_size
            )
    except redis.exceptions.RedisError:
        logger.warning("cannot read the broker's messages; lost ones are re-sent after REDISPATCH_AFTER_SECONDS")
        return []


def nudge_dispatcher(session: Session, keep: Callable[[Dispatch], bool] | None = None) -> list[Dispatch] | None:
    """Admit pending work now for lower latency, never failing the caller; with `keep`, return one message's
    worth of admitted jobs it accepts, sent to no one, for the caller to claim.

    Used right after an upload or a finished job has committed: an error here
    must not turn that success into a failure (a client would retry and
    upload twice). It only admits: recovery and re-sends do not depend on
    what just happened, and are the clock's. The clock's next tick does
    whatever this run could not.

    A worker thread that has just finished its jobs keeps a message's worth (`keep`) and claims
    them itself: no message, so no wait for a consumer's next poll of Redis (up
    to DRAMATIQ_POLL_MS once a queue has been empty). The jobs are `queued` like
    any admitted ones: if the worker dies before claiming them, the clock re-sends
    them after REDISPATCH_AFTER_SECONDS.
    """
    try:
        return process_document_queue(session, maintenance=False, keep=keep).kept
    except Exception:
        session.rollback()
        logger.exception("dispatcher nudge failed; the clock will dispatch instead")
        return None
