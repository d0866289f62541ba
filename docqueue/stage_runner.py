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
from docqueue.db import session_scope
from docqueue.pdf_pool import StageStopped, StageTimeout, run_in_pdf_process
from docqueue.pipeline import next_stage, stage_named
from docqueue.queue import Claim, DocumentQueueService, LeaseLost
from docqueue.queue.dispatcher import nudge_dispatcher
from docqueue.queue.messages import send_stage_messages
from docqueue.stages import extract_text, inspect
from docqueue.stages.errors import DocumentRejected
from docqueue.storage import blob_store, original_file_key

logger = logging.getLogger(__name__)

#: Stage name -> module with `run(path, claim)` and `record(session, claim, result)`.
STAGE_MODULES = {"inspect": inspect, "extract_text": extract_text}


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


def _publish(claim: Claim, result) -> None:
    """Record the stage's result and hand the job on, in one fenced transaction."""
    following = next_stage(claim.stage)
    with session_scope() as session:
        queue = DocumentQueueService(session)
        queue.hold_lease(claim)
        STAGE_MODULES[claim.stage].record(session, claim, result)
        if following is None:
            queue.mark_completed(claim)
            dispatch = None
        else:
            dispatch = queue.advance(claim, following.name, stage_named(claim.stage).progress_when_done)
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


def _fail(claim: Claim, message: str, *, retryable: bool, traceback: str | None = None) -> None:
    try:
        with session_scope() as session:
            status = DocumentQueueService(session).mark_failed(claim, message, retryable=retryable, traceback=traceback)
    except LeaseLost:
        logger.warning("job %s lost its lease before its failure could be recorded", claim.job_id)
        return
    logger.info("job %s stage %s attempt %s failed (%s): %s", claim.job_id, claim.stage, claim.attempt, status, message)
    with session_scope() as session:
        nudge_dispatcher(session)


def crash_traceback(error: BaseException) -> str:
    """A crash's traceback for the job page; an error from the PDF process carries the remote one as its cause."""
    return "".join(traceback.format_exception(error))


def run_stage(stage: str, job_id: int) -> str:
    """Run `stage` for queue item `job_id` if this message wins the claim.

    Returns what happened: "dropped" (stale or duplicate message),
    "done", "failed" or "lease_lost".
    """
    with session_scope() as session:
        claim = DocumentQueueService(session).mark_in_progress(job_id, stage, current_worker_id())
    if claim is None:
        logger.info("dropping message for job %s stage %s: not queued at that stage", job_id, stage)
        return "dropped"
    try:
        with (
            tempfile.TemporaryDirectory(prefix=f"docqueue-{job_id}-") as directory,
            lease_watch.watching(job_id) as lease_lost,
        ):
            path = _fetch_original(claim, directory)
            result = run_in_pdf_process(
                STAGE_MODULES[stage].run,
                path,
                claim,
                timeout=claim.timeout_seconds,
                stop=lease_lost,
                confirm_stop=lambda: _lease_gone(claim),
            )
        _publish(claim, result)
        return "done"
    except StageStopped:
        logger.warning("job %s stage %s attempt %s stopped: its lease was taken away", job_id, stage, claim.attempt)
        return "lease_lost"
    except LeaseLost:
        logger.warning("job %s stage %s attempt %s lost its lease; result discarded", job_id, stage, claim.attempt)
        return "lease_lost"
    except DocumentRejected as rejection:
        _fail(claim, str(rejection), retryable=False)
    except StageTimeout as timeout:
        # A file that hangs MuPDF once will hang it again: do not burn more attempts on it.
        _fail(claim, f"{stage} {timeout}", retryable=False)
    except Exception as error:
        sentry_sdk.capture_exception(error)
        logger.exception("job %s stage %s attempt %s crashed", job_id, stage, claim.attempt)
        _fail(
            claim, f"{stage} failed: {type(error).__name__}: {error}", retryable=True, traceback=crash_traceback(error)
        )
    return "failed"
