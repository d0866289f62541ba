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
import uuid

import sentry_sdk

from docqueue.db import session_scope
from docqueue.errors import StageError, failure_kind
from docqueue.pdf_pool import StageTimeout, run_in_pdf_process
from docqueue.pipeline import next_stage, progress_after, stage_named
from docqueue.queue import Claim, DocumentQueueService, LeaseLost
from docqueue.queue.attempts import FAILED, RETRYING, SUCCEEDED, close_attempt, open_attempt
from docqueue.queue.dispatcher import nudge_dispatcher
from docqueue.queue.handback import hand_back
from docqueue.queue.messages import send_stage_messages
from docqueue.stages.stage import Lane, Stage
from docqueue.stages.time_limits import time_limit_for
from docqueue.statuses import FailureKind
from docqueue.storage import blob_store, original_file_key
from docqueue.worker_shutdown import WorkerStopping

logger = logging.getLogger(__name__)


_worker_ids: dict[int, str] = {}
# Made under a lock: a worker thread's claim and the heartbeat thread may ask at the same moment, and two
# different random ids for one process would leave its claims unrenewed.
_worker_id_lock = threading.Lock()


def current_worker_id() -> str:
    """This process's identity on the leases it holds (new after a fork)."""
    pid = os.getpid()
    with _worker_id_lock:
        if pid not in _worker_ids:
            _worker_ids[pid] = f"{socket.gethostname()}:{pid}:{uuid.uuid4().hex[:8]}"
        return _worker_ids[pid]


def _fetch_original(claim: Claim, directory: str) -> str:
    path = os.path.join(directory, "original")
    with open(path, "wb") as target, session_scope() as session:
        blob_store(session).download_to(original_file_key(claim.document_id), target)
    return path


def _work(stage: Stage, claim: Claim, timeout: int):
    """Do the stage's work in its lane and return its result."""
    if stage.lane is Lane.IO:
        return stage.run(None, claim)
    with tempfile.TemporaryDirectory(prefix=f"docqueue-{claim.job_id}-") as directory:
        path = _fetch_original(claim, directory)
        return run_in_pdf_process(stage.run, path, claim, timeout=timeout)


def _publish(stage: Stage, claim: Claim, result) -> None:
    """Record the stage's result and hand the job on, in one fenced transaction."""
    following = next_stage(stage.name)
    with session_scope() as session:
        queue = DocumentQueueService(session)
        queue.hold_lease(claim)
        stage.record(session, claim, result)
        close_attempt(session, claim, SUCCEEDED)
        if following is None:
            queue.mark_completed(claim)
            dispatch = None
        else:
            dispatch = queue.advance(claim, following.name, progress_after(stage.name))
    if dispatch is None:
        # A finished job frees capacity: let the next one in now rather than at the next clock tick.
        with session_scope() as session:
            nudge_dispatcher(session)
    else:
        send_stage_messages([dispatch])


def _fail(claim: Claim, error: Exception, message: str, kind: FailureKind) -> None:
    try:
        with session_scope() as session:
            status = DocumentQueueService(session).mark_failed(claim, message, kind)
            close_attempt(session, claim, FAILED if status == "failed" else RETRYING, error, message)
    except LeaseLost:
        logger.warning("job %s (document %s) lost its lease before its failure was recorded", claim.job_id, claim.document_id)
        return
    if status == "failed":
        # One event per final failure: retries that may still pass are not news.
        with sentry_sdk.new_scope() as scope:
            scope.set_tag("stage", claim.stage)
            scope.set_extra("job_id", claim.job_id)
            scope.set_extra("document_id", claim.document_id)
            scope.set_extra("message", message)
            sentry_sdk.capture_exception(error)
    logger.info(
        "job %s (document %s) stage %s attempt %s failed, %s (%s): %s",
        claim.job_id, claim.document_id, claim.stage, claim.attempt, kind.value, status, message,
    )
    with session_scope() as session:
        nudge_dispatcher(session)


def _hand_back(claim: Claim) -> None:
    """The worker is shutting down: give the item back so another worker resumes it now."""
    try:
        with session_scope() as session:
            dispatch = hand_back(session, claim)
    except LeaseLost:
        logger.warning("job %s (document %s) lost its lease before it was handed back", claim.job_id, claim.document_id)
        return
    send_stage_messages([dispatch])
    logger.info("job %s (document %s) stage %s handed back: the worker is shutting down",
                claim.job_id, claim.document_id, claim.stage)


def _failure_message(stage: Stage, claim: Claim, error: Exception) -> str:
    """What the uploader reads: our own errors as they are, anything else without internals."""
    if isinstance(error, StageTimeout):
        return f"{stage.name} {error}"
    if isinstance(error, StageError):
        return str(error)
    if failure_kind(error) is FailureKind.TRANSIENT:
        return f"{stage.name} was interrupted by a temporary problem reaching the database or broker"
    return f"{stage.name} failed because of an internal error (logged as job {claim.job_id})"


def run_stage(stage_name: str, job_id: int) -> str:
    """Run stage `stage_name` for queue item `job_id` if this message wins the claim.

    Returns what happened: "dropped" (stale or duplicate message),
    "done", "failed", "handed_back" or "lease_lost".
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
    except WorkerStopping:
        _hand_back(claim)
        return "handed_back"
    except LeaseLost:
        logger.warning(
            "job %s (document %s) stage %s attempt %s lost its lease; result discarded",
            job_id, claim.document_id, stage.name, claim.attempt,
        )
        return "lease_lost"
    except Exception as error:
        if not isinstance(error, StageError):
            logger.exception("job %s (document %s) stage %s attempt %s crashed", job_id, claim.document_id, stage.name, claim.attempt)
        _fail(claim, error, _failure_message(stage, claim, error), failure_kind(error))
    return "failed"
