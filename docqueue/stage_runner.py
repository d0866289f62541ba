"""Running one stage of one job: claim, work, publish, hand on.

Actors call `run_stage`; it is the whole life of a stage message. The claim
is one conditional UPDATE; a message that fails to claim is dropped without
any effect. Results are written only while the claim's lease still holds.
"""

from __future__ import annotations

import logging
import os
import socket
import tempfile
import threading
import traceback
import uuid

import sentry_sdk

from docqueue import lease_watch
from docqueue.ai.breakers import ServiceUnavailable
from docqueue.callbacks import deliveries
from docqueue.callbacks.sender import request_delivery
from docqueue.db import session_scope
from docqueue.errors import StageError, failure_kind
from docqueue.pdf_pool import StageStopped, StageTimeout, run_in_pdf_process
from docqueue.pipeline import next_stage, progress_after, stage_named
from docqueue.queue import Claim, DocumentQueueService, LeaseLost, run_outputs, stage_records
from docqueue.queue.attempts import FAILED, RETRYING, SUCCEEDED, close_attempt, open_attempt
from docqueue.queue.deferral import defer_claim
from docqueue.queue.dispatcher import nudge_dispatcher
from docqueue.queue.handback import hand_back
from docqueue.queue.messages import send_stage_messages
from docqueue.stages.stage import Lane, Skipped, Stage
from docqueue.stages.time_limits import time_limit_for
from docqueue.statuses import FailureKind
from docqueue.storage import blob_store, original_file_key
from docqueue.worker_shutdown import WorkerStopping

logger = logging.getLogger(__name__)


_worker_ids: dict[int, str] = {}
_worker_ids_lock = threading.Lock()


def current_worker_id() -> str:
    """This process's identity on the leases it holds (new after a fork).

    Made under a lock: the heartbeat thread and a stage thread asking at once
    at boot must get the same id, or the heartbeat renews none of that
    stage's lease (`functools.cache` does not lock, so each got its own id).
    """
    pid = os.getpid()
    with _worker_ids_lock:
        if pid not in _worker_ids:
            _worker_ids[pid] = f"{socket.gethostname()}:{pid}:{uuid.uuid4().hex[:8]}"
        return _worker_ids[pid]


def _fetch_original(claim: Claim, directory: str) -> str:
    path = os.path.join(directory, "original")
    with open(path, "wb") as target, session_scope() as session:
        blob_store(session).download_to(original_file_key(claim.document_id), target)
    return path


def _work(stage: Stage, claim: Claim, timeout: int):
    """Do the stage's work in its lane and return its result (or `Skipped`)."""
    if stage.skip_if is not None:
        with session_scope() as session:
            reason = stage.skip_if(session, claim)
        if reason:
            return Skipped(reason)
    if stage.lane is Lane.IO:
        return stage.run(None, claim)
    with (
        tempfile.TemporaryDirectory(prefix=f"docqueue-{claim.job_id}-") as directory,
        lease_watch.watching(claim.job_id) as lease_lost,
    ):
        path = _fetch_original(claim, directory)
        if stage.fans_out:
            return stage.run(path, claim)
        return run_in_pdf_process(
            stage.run, path, claim, timeout=timeout, stop=lease_lost, confirm_stop=lambda: _lease_gone(claim)
        )


def _publish(stage: Stage, claim: Claim, result) -> None:
    """Record the stage's result and hand the job on, in one fenced transaction.

    The last stage completes the run: the document points at it and the
    outputs of its other runs go, in the same transaction.
    """
    following = next_stage(stage.name)
    with session_scope() as session:
        queue = DocumentQueueService(session)
        queue.hold_lease(claim)
        if isinstance(result, Skipped):
            stage_records.skip(session, claim, result.reason)
        else:
            stage.record(session, claim, result)
        close_attempt(session, claim, SUCCEEDED)
        callback = None
        if following is None:
            queue.mark_completed(claim)
            run_outputs.retire_older_runs(session, claim.document_id, claim.job_id)
            callback = deliveries.schedule(session, claim.job_id)
            dispatch = None
        else:
            dispatch = queue.advance(claim, following.name, progress_after(stage.name))
    if callback is not None:
        request_delivery()
    if dispatch is None:
        # A finished job frees capacity: let the next one in now rather than at the next clock tick.
        with session_scope() as session:
            nudge_dispatcher(session)
    else:
        send_stage_messages([dispatch])


def _lease_gone(claim: Claim) -> bool:
    """Whether the claim's lease is really gone: checked before killing a stage the heartbeat says lost it."""
    try:
        with session_scope() as session:
            DocumentQueueService(session).hold_lease(claim)
    except LeaseLost:
        return True
    logger.warning("job %s stage %s was reported to have lost its lease but still holds it", claim.job_id, claim.stage)
    return False


def _fail(claim: Claim, error: Exception, message: str, kind: FailureKind, traceback: str | None = None) -> None:
    try:
        with session_scope() as session:
            status = DocumentQueueService(session).mark_failed(claim, message, kind, traceback)
            close_attempt(session, claim, FAILED if status == "failed" else RETRYING, error, message)
            callback = deliveries.schedule(session, claim.job_id) if status == "failed" else None
    except LeaseLost:
        logger.warning(
            "job %s (document %s) lost its lease before its failure was recorded", claim.job_id, claim.document_id
        )
        return
    if status == "failed":
        # One event per final failure: retries that may still pass are not news.
        with sentry_sdk.new_scope() as scope:
            scope.set_tag("stage", claim.stage)
            scope.set_tag("job_id", claim.job_id)
            scope.set_tag("document_id", claim.document_id)
            scope.set_extra("message", message)
            if getattr(error, "detail", None):
                scope.set_extra("detail", error.detail)
            sentry_sdk.capture_exception(error)
    logger.info(
        "job %s (document %s) stage %s attempt %s failed, %s (%s): %s",
        claim.job_id,
        claim.document_id,
        claim.stage,
        claim.attempt,
        kind.value,
        status,
        message,
    )
    if callback is not None:
        request_delivery()
    with session_scope() as session:
        nudge_dispatcher(session)


def _defer(claim: Claim, waiting: ServiceUnavailable) -> None:
    try:
        with session_scope() as session:
            defer_claim(session, claim, waiting.until, str(waiting))
    except LeaseLost:
        logger.warning(
            "job %s (document %s) lost its lease before it could be deferred", claim.job_id, claim.document_id
        )
        return
    logger.info("job %s (document %s) stage %s deferred: %s", claim.job_id, claim.document_id, claim.stage, waiting)


def _hand_back(claim: Claim) -> None:
    """The worker is shutting down: give the item back so another worker resumes it now."""
    try:
        with session_scope() as session:
            dispatch = hand_back(session, claim)
    except LeaseLost:
        logger.warning("job %s (document %s) lost its lease before it was handed back", claim.job_id, claim.document_id)
        return
    send_stage_messages([dispatch])
    logger.info(
        "job %s (document %s) stage %s handed back: the worker is shutting down",
        claim.job_id,
        claim.document_id,
        claim.stage,
    )


def _failure_message(stage: Stage, claim: Claim, error: Exception) -> str:
    """What the uploader reads: our own errors as they are, anything else without internals."""
    if isinstance(error, StageTimeout):
        return f"{stage.name} {error}"
    if isinstance(error, StageError):
        return str(error)
    if failure_kind(error) is FailureKind.TRANSIENT:
        return f"{stage.name} was interrupted by a temporary problem reaching the database or broker"
    return f"{stage.name} failed because of an internal error (logged as job {claim.job_id})"


def crash_traceback(error: BaseException) -> str:
    """A crash's traceback for the job page; an error from the PDF process carries the remote one as its `detail`."""
    return getattr(error, "detail", None) or "".join(traceback.format_exception(error))


def run_stage(stage_name: str, job_id: int) -> str:
    """Run stage `stage_name` for queue item `job_id` if this message wins the claim.

    Returns what happened: "dropped" (stale or duplicate message),
    "done", "deferred" (an outside service's breaker is open), "failed",
    "handed_back" (the worker is shutting down) or "lease_lost".
    """
    stage = stage_named(stage_name)
    with session_scope() as session:
        claim = DocumentQueueService(session).mark_in_progress(job_id, stage.name, current_worker_id())
        if claim is not None:
            open_attempt(session, claim, current_worker_id())
            time_limit = time_limit_for(session, stage, claim)
    if claim is None:
        logger.info("dropping message for job %s stage %s: not queued at that stage", job_id, stage.name)
        return "dropped"
    try:
        _publish(stage, claim, _work(stage, claim, time_limit))
        return "done"
    except StageStopped:
        logger.warning(
            "job %s (document %s) stage %s attempt %s stopped: its lease was taken away",
            job_id,
            claim.document_id,
            stage.name,
            claim.attempt,
        )
        return "lease_lost"
    except WorkerStopping:
        _hand_back(claim)
        return "handed_back"
    except LeaseLost:
        logger.warning(
            "job %s (document %s) stage %s attempt %s lost its lease; result discarded",
            job_id,
            claim.document_id,
            stage.name,
            claim.attempt,
        )
        return "lease_lost"
    except ServiceUnavailable as waiting:
        _defer(claim, waiting)
        return "deferred"
    except Exception as error:
        _log_failure(stage, claim, error)
        crash = crash_traceback(error) if getattr(error, "detail", None) or not isinstance(error, StageError) else None
        _fail(claim, error, _failure_message(stage, claim, error), failure_kind(error), crash)
    return "failed"


def _log_failure(stage: Stage, claim: Claim, error: Exception) -> None:
    """Log what the user is not shown (the library's error, paths, traceback), keyed by job and document.

    Every attempt is logged; Sentry hears once, of the final failure (`_fail`).
    """
    detail = getattr(error, "detail", None)
    if isinstance(error, StageError) and not detail:
        return  # an expected failure, fully said by its message
    if detail:
        logger.warning(
            "job %s (document %s) stage %s attempt %s failed: %s\n%s",
            claim.job_id,
            claim.document_id,
            stage.name,
            claim.attempt,
            error,
            detail,
        )
    else:
        logger.exception(
            "job %s (document %s) stage %s attempt %s crashed",
            claim.job_id,
            claim.document_id,
            stage.name,
            claim.attempt,
        )
