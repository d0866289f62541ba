"""Running the stages of one job for one message: claim, work, publish, and go on or hand on.

Actors call `run_stage`; it is the whole life of a stage message. The claim
is one conditional UPDATE; a message that fails to claim is dropped without
any effect. Results are written only while the claim's lease still holds.

A worker that finishes a stage goes on with the next one itself when it
runs in the same lane (`DocumentQueueService.continue_with`: the hand-on and
the next claim in one statement), skipping on its way the stages that have
nothing to do. So a small document costs one message, one file fetch and
one transaction per stage, not a broker round trip and a worker's poll per
stage. It hands on by message when the next stage belongs to the other
lane, or when the worker is shutting down. A job's first claim of a small
document runs its first stages in one pass (`one_pass`); the work itself is
done by `stage_work`.

A message may name several jobs of one owner at one stage (`dispatch.messages`):
they are claimed in one statement, each with its own lease, and run one after
another, each published, failed or handed back on its own. Once the message's
jobs are done, admission runs once in this thread, if any of them freed a slot,
and may give it its next jobs, claimed with no message (`next_job`).
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session

from docqueue.ai.breakers import ServiceUnavailable
from docqueue.callbacks import deliveries
from docqueue.callbacks.sender import request_delivery
from docqueue.db import session_scope
from docqueue.dispatch.messages import message_job_ids, send_batches, send_stage_messages
from docqueue.jobs import Claim, Dispatch, LeaseLost
from docqueue.pipeline import next_stage, progress_after, stage_named
from docqueue.queue import DocumentQueueService, run_outputs, stage_records
from docqueue.queue.attempts import close_attempt
from docqueue.runtime import held_jobs
from docqueue.runtime.pdf_pool import StageStopped
from docqueue.runtime.pool_share import Preempted
from docqueue.runtime.worker_identity import current_worker_id
from docqueue.runtime.worker_shutdown import WorkerStopping, is_stopping
from docqueue.stages.stage import Skipped, Stage
from docqueue.statuses import STAGE_RETRY, AttemptOutcome
from docqueue.storage.originals import OriginalFile
from docqueue.worker import next_job
from docqueue.worker.one_pass import record_one_pass, takes_one_pass
from docqueue.worker.stage_outcomes import PassedOver, defer, fail, give_back, is_final, passed_over
from docqueue.worker.stage_work import Step, claimed, work, work_one_pass

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FreedSlot:
    """A job's run ended here (completed, or parked while an operator holds its next stage): its slot is free."""

    stage: Stage


def _next_to_run(session: Session, claim: Claim) -> tuple[Stage | None, int, str]:
    """The next stage after the claimed one that has work, the progress reached before it, and the claimed
    stage's name (the last that ran).

    Stages whose `skip_if` gives a reason are recorded skipped on the way, in
    the caller's fenced transaction. A stage retry runs its stage alone: the
    others of its run are done already.
    """
    if claim.operation == STAGE_RETRY:
        return None, 100, claim.stage
    progress = progress_after(claim.stage)
    following = next_stage(claim.stage)
    skipped = []
    while following is not None and following.skip_if is not None:
        reason = following.skip_if(session, claim)
        if not reason:
            break
        skipped.append((following.name, reason))
        progress = progress_after(following.name)
        following = next_stage(following.name)
    stage_records.skip_ahead(session, claim, skipped)
    return following, progress, claim.stage


def goes_on(stage: Stage, following: Stage) -> bool:
    """Whether the worker that finished `stage` runs `following` itself rather than handing it on by message.

    Only within a lane (the I/O lane's thread cap must see every I/O stage),
    and not once the worker is shutting down.
    """
    return following.lane is stage.lane and not is_stopping()


def _publish(step: Step, result) -> Step | FreedSlot | None:
    """Record the stage's result and hand the job on, in one fenced transaction; the next step to run here, if
    any, or `FreedSlot` when the job left its slot."""
    stage, claim = step.stage, step.claim

    def record(session: Session) -> tuple[Stage | None, int, str]:
        if isinstance(result, Skipped):
            stage_records.skip(session, claim, result.reason)
        elif isinstance(result, PassedOver):
            stage_records.fail_optional(session, claim, result.message)
            close_attempt(session, claim, AttemptOutcome.FAILED, result.error, result.message)
        else:
            stage.record(session, claim, result)
        return _next_to_run(session, claim)

    return _hand_on(step, record)


def _hand_on(step: Step, record: Callable[[Session], tuple[Stage | None, int, str]]) -> Step | FreedSlot | None:
    """Hold the claim's lease, `record` what the step did (it returns the next stage to run, or None when the run
    is done, the progress reached and the stage that ran last), and hand the job on, in one fenced transaction; the
    next step to run here, if any, or `FreedSlot` when the job left its slot.

    The last stage completes the run: the document points at it and the
    outputs of its other runs go, in the same transaction. Each transition
    closes the attempt as succeeded in its own statement.
    """
    stage, claim = step.stage, step.claim
    dispatch = callback = going_on = None
    with session_scope() as session:
        queue = DocumentQueueService(session)
        queue.hold_lease(claim)
        following, progress, ran_last = record(session)
        if following is None:
            queue.mark_completed(claim, ran_last if ran_last != claim.stage else None)
            run_outputs.retire_older_runs(session, claim.document_id, claim.job_id)
            callback = deliveries.schedule(session, claim.job_id)
        elif goes_on(stage, following) and (
            next_claim := queue.continue_with(claim, following.name, progress, current_worker_id())
        ):
            going_on = claimed(following, next_claim, skip_checked=True)
        else:
            # A message for the next stage; or, when an operator holds it, the job waits in pending (None).
            dispatch = queue.advance(claim, following.name, progress)
    if callback is not None:
        request_delivery()
    if dispatch is not None:
        send_stage_messages([dispatch])
    elif going_on is None:
        # A finished job frees capacity: the next is let in once this message's jobs are done (`_run_batch`).
        return FreedSlot(stage)
    return going_on


def _run_step(step: Step, original: OriginalFile) -> tuple[str, Step | FreedSlot | None]:
    """Run one claimed stage to its end; what happened, and the next step this thread runs (or `FreedSlot`)."""
    stage, claim = step.stage, step.claim
    try:
        if takes_one_pass(stage, claim) and (reads := work_one_pass(step, original)) is not None:
            return "done", _hand_on(step, lambda session: record_one_pass(session, claim, reads))
        return "done", _publish(step, work(step, original))
    except StageStopped:
        logger.warning(
            "job %s (document %s) stage %s attempt %s stopped: its lease was taken away",
            claim.job_id,
            claim.document_id,
            stage.name,
            claim.attempt,
        )
        return "lease_lost", None
    except WorkerStopping as stopping:
        # Shutting down, or preempted for another user's waiting work (`pool_share`): resumed later, not failed.
        give_back(claim, str(stopping) if isinstance(stopping, Preempted) else None)
        return "handed_back", None
    except LeaseLost:
        logger.warning(
            "job %s (document %s) stage %s attempt %s lost its lease; result discarded",
            claim.job_id,
            claim.document_id,
            stage.name,
            claim.attempt,
        )
        return "lease_lost", None
    except ServiceUnavailable as waiting:
        defer(claim, waiting)
        return "deferred", None
    except Exception as error:
        if stage.optional and is_final(claim, error):
            return _go_on_without(step, error)
        fail(stage, claim, error)
        return "failed", None


def _go_on_without(step: Step, error: Exception) -> tuple[str, Step | FreedSlot | None]:
    """An optional stage failed for good: record it failed and hand the run on (or complete it) without it."""
    try:
        return "done", _publish(step, passed_over(step.stage, step.claim, error))
    except LeaseLost:
        logger.warning(
            "job %s (document %s) lost its lease before optional stage %s's failure was recorded",
            step.claim.job_id,
            step.claim.document_id,
            step.stage.name,
        )
        return "lease_lost", None


def run_stage(stage_name: str, job_ids: int | list[int]) -> str:
    """Run stage `stage_name` for the queued jobs `job_ids` (a message's: one id, or several) that this message
    wins the claim of, the stages after it that this worker goes on with, and the jobs admission then gives
    this thread (`next_job`).

    Returns how the last of them ended: "dropped" (stale or duplicate
    message), "done", "deferred" (an outside service's breaker is open),
    "failed", "handed_back" (the worker is shutting down) or "lease_lost".
    """
    next_job.message_began()
    batch = [Dispatch(job_id=job_id, stage=stage_name) for job_id in message_job_ids(job_ids)]
    outcome = "dropped"
    while batch:
        outcome, batch = _run_batch(batch)
    return outcome


def _run_batch(batch: list[Dispatch]) -> tuple[str, list[Dispatch] | None]:
    """Claim the batch's jobs (one stage) in one statement and run each here in turn; how the last ended, and the
    next batch admission gave this thread, if any (asked once, after the batch, if a job freed its slot)."""
    stage = stage_named(batch[0].stage)
    if is_stopping():
        # A message fetched while the worker shuts down: claimed here its jobs would only be handed back.
        send_batches([batch])
        return "handed_back", None
    job_ids = [job.job_id for job in batch]
    held_jobs.holding(job_ids)
    with session_scope() as session:
        claims = DocumentQueueService(session).claim_many(job_ids, stage.name, current_worker_id())
    if len(claims) < len(batch):
        dropped = sorted(set(job_ids) - {claim.job_id for claim in claims})
        logger.info("dropping messages for jobs %s stage %s: not queued at that stage", dropped, stage.name)
    outcome, freed = "dropped", None
    for turn, claim in enumerate(claims):
        waiting = claims[turn:]
        held_jobs.holding([each.job_id for each in waiting])
        if is_stopping():
            for each in waiting:
                give_back(each, None)
            return "handed_back", None
        outcome, ended = _run_job(claimed(stage, claim))
        freed = ended or freed
    held_jobs.holding([])
    return outcome, next_job.after_completion(freed.stage) if freed is not None else None


def _run_job(step: Step) -> tuple[str, FreedSlot | None]:
    """Run a claimed job's stages here; how the last ended, and `FreedSlot` if the job left its slot."""
    with tempfile.TemporaryDirectory(prefix=f"docqueue-{step.claim.job_id}-") as directory:
        original = OriginalFile(step.claim.document_id, directory)
        while isinstance(step, Step):
            outcome, step = _run_step(step, original)
    return outcome, step
