"""A claimed stage's work, done in its lane: in a PDF process (killed at its time limit or once its lease is
gone) or in the worker thread (stopped between its batches), and a small document's one pass.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from docqueue.db import session_scope
from docqueue.errors import StageTimeout
from docqueue.jobs import Claim, LeaseLost
from docqueue.pipeline import progress_span
from docqueue.queue import DocumentQueueService
from docqueue.runtime import lease_watch
from docqueue.runtime.pdf_pool import StageProcessDied, run_in_pdf_process
from docqueue.runtime.pdf_processes import preload_in_pdf_processes
from docqueue.runtime.pool_guard import MemoryCapExceeded
from docqueue.settings import get_settings
from docqueue.stages.stage import Lane, Skipped, Stage
from docqueue.stages.time_limits import time_limit_for
from docqueue.storage.originals import OriginalFile
from docqueue.worker.one_pass import read_one_pass

# Stages' `run` go to the PDF processes: have each import them all before its first task.
preload_in_pdf_processes("docqueue.pipeline")

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Step:
    """A claimed stage about to run, with its time limit."""

    stage: Stage
    claim: Claim
    time_limit: int
    #: Its `skip_if` was already asked, in the transaction that claimed it.
    skip_checked: bool = False


def claimed(stage: Stage, claim: Claim, skip_checked: bool = False) -> Step:
    """The step of a claim just made (its statement opened the attempt), with its time limit."""
    claim = replace(claim, progress=progress_span(stage.name))
    return Step(stage, claim, time_limit_for(stage, claim), skip_checked)


def work(step: Step, original: OriginalFile):
    """Do the stage's work in its lane and return its result (or `Skipped`)."""
    stage, claim = step.stage, step.claim
    if stage.skip_if is not None and not step.skip_checked:
        with session_scope() as session:
            reason = stage.skip_if(session, claim)
        if reason:
            return Skipped(reason)
    if stage.lane is Lane.IO or stage.in_worker_thread:
        path = None if stage.lane is Lane.IO else original.fetch()
        # Here no process can be killed: the stage stops between its batches (see lease_watch).
        with lease_watch.watching(claim.job_id, None if stage.limits_own_time else step.time_limit):
            result = stage.run(path, claim)
            lease_watch.check_time(claim.job_id)
            return result
    return _in_pdf_process(claim, step.time_limit, stage.run, original.fetch(), claim)


def _in_pdf_process(claim: Claim, time_limit: int, function, *args):
    """`function(*args)` in a PDF process for the claim: killed at `time_limit`, or once its lease is gone."""
    with lease_watch.watching(claim.job_id) as lease_lost:
        return run_in_pdf_process(
            function,
            *args,
            timeout=time_limit,
            stop=lease_lost,
            confirm_stop=lambda: _lease_gone(claim),
            owner=claim.owner_id,
        )


def work_one_pass(step: Step, original: OriginalFile) -> dict | None:
    """Read a small document's one pass in a PDF process (see `one_pass`): stage name -> what it read; None
    when the pass ran past SMALL_DOCUMENT_PASS_SECONDS (or the claimed stage's limit, if shorter), or its process
    died or passed its memory cap: run stage by stage instead."""
    claim, settings = step.claim, get_settings()
    # A small file that reads slowly (a hostile one draws millions of glyphs) costs the pass's few seconds,
    # then meets each stage's own limit: not a first stage's whole limit twice.
    limit = min(step.time_limit, settings.small_document_pass_seconds)
    try:
        return _in_pdf_process(claim, limit, read_one_pass, original.fetch(), claim, settings.small_document_max_pages)
    except (StageTimeout, StageProcessDied, MemoryCapExceeded) as error:
        logger.info("job %s: the one pass stopped (%s); running stage by stage", claim.job_id, type(error).__name__)
        return None


def _lease_gone(claim: Claim) -> bool:
    """Whether the claim's lease is really gone: checked before killing a stage the heartbeat says lost it."""
    try:
        with session_scope() as session:
            DocumentQueueService(session).hold_lease(claim)
    except LeaseLost:
        return True
    logger.warning(
        "job %s (document %s) stage %s was reported to have lost its lease but still holds it",
        claim.job_id,
        claim.document_id,
        claim.stage,
    )
    return False
