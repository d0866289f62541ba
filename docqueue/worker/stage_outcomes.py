"""How a stage attempt that did not publish ends: failed, deferred, or handed back.

Each records its outcome in one fenced transaction (the queue service's
transitions), then logs, tells Sentry, or wakes whoever must act next. An
optional stage's final failure is the exception: the run goes on without
it (`passed_over`), and the runner records it in the hand-on's transaction.
"""

from __future__ import annotations

import logging
import traceback
from dataclasses import dataclass

import sentry_sdk

from docqueue.ai.breakers import ServiceUnavailable
from docqueue.callbacks import deliveries
from docqueue.callbacks.sender import request_delivery
from docqueue.db import session_scope
from docqueue.dispatch.dispatcher import nudge_dispatcher
from docqueue.dispatch.messages import send_stage_messages
from docqueue.errors import StageError, StageTimeout, failure_kind, is_users_news
from docqueue.jobs import Claim, LeaseLost
from docqueue.queue import DocumentQueueService
from docqueue.queue.attempts import close_attempt
from docqueue.queue.deferral import defer_claim
from docqueue.queue.handback import hand_back
from docqueue.stages.stage import Stage
from docqueue.statuses import AttemptOutcome, FailureKind

logger = logging.getLogger(__name__)


def fail(stage: Stage, claim: Claim, error: Exception) -> None:
    """Record the attempt's failure (retrying if it is transient and attempts are left), log it, tell Sentry once."""
    _log_failure(stage, claim, error)
    crash = crash_traceback(error) if getattr(error, "detail", None) or not isinstance(error, StageError) else None
    _record_failure(claim, error, _failure_message(stage, claim, error), failure_kind(error), crash)


def is_final(claim: Claim, error: Exception) -> bool:
    """Whether this attempt's failure ends the stage: a permanent error, or a transient one on its last attempt.

    The same rule as `DocumentQueueService.mark_failed`'s retry condition.
    """
    return failure_kind(error) is FailureKind.PERMANENT or claim.attempt >= claim.max_attempts


@dataclass(frozen=True)
class PassedOver:
    """An optional stage failed for good: the result its hand-on records (the stage `failed`, with `message`)."""

    error: Exception
    message: str


def passed_over(stage: Stage, claim: Claim, error: Exception) -> PassedOver:
    """Log an optional stage's final failure and tell Sentry once; what its hand-on records."""
    _log_failure(stage, claim, error)
    message = _failure_message(stage, claim, error)
    with sentry_sdk.new_scope() as scope:
        scope.set_tag("document_id", claim.document_id)
        scope.set_tag("job_id", claim.job_id)
        scope.set_tag("stage", claim.stage)
        scope.set_extra("message", message)
        scope.set_extra("optional", True)
        sentry_sdk.capture_exception(error)
    logger.info(
        "job %s (document %s) optional stage %s failed for good on attempt %s, the run goes on: %s",
        claim.job_id,
        claim.document_id,
        claim.stage,
        claim.attempt,
        message,
    )
    return PassedOver(error, message)


def _record_failure(
    claim: Claim, error: Exception, message: str, kind: FailureKind, traceback: str | None = None
) -> None:
    try:
        with session_scope() as session:
            status = DocumentQueueService(session).mark_failed(claim, message, kind, traceback)
            close_attempt(
                session, claim, AttemptOutcome.FAILED if status == "failed" else AttemptOutcome.RETRYING, error, message
            )
            callback = deliveries.schedule(session, claim.job_id) if status == "failed" else None
    except LeaseLost:
        logger.warning(
            "job %s (document %s) lost its lease before its failure was recorded", claim.job_id, claim.document_id
        )
        return
    if status == "failed":
        _tell_sentry(claim, error, message)
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


def _tell_sentry(claim: Claim, error: Exception, message: str) -> None:
    """One event per final failure (retries that may still pass are not news), tagged document first.

    The user's own file (password, damaged, not a PDF) is their news, said on their page: no error event, only
    a breadcrumb, or an info-level record when the reader's own error (`detail`) is worth keeping.
    """
    with sentry_sdk.new_scope() as scope:
        scope.set_tag("document_id", claim.document_id)
        scope.set_tag("job_id", claim.job_id)
        scope.set_tag("stage", claim.stage)
        scope.set_extra("message", message)
        detail = getattr(error, "detail", None)
        if detail:
            scope.set_extra("detail", detail)
        if not is_users_news(error):
            sentry_sdk.capture_exception(error)
        elif detail:
            sentry_sdk.capture_message(f"document {claim.document_id} rejected: {message}", level="info")
        else:
            sentry_sdk.add_breadcrumb(category="document", message=f"document {claim.document_id} rejected: {message}")


def defer(claim: Claim, waiting: ServiceUnavailable) -> None:
    """An outside service's breaker is open: put the item aside until it may close."""
    try:
        with session_scope() as session:
            defer_claim(session, claim, waiting.until, str(waiting))
    except LeaseLost:
        logger.warning(
            "job %s (document %s) lost its lease before it could be deferred", claim.job_id, claim.document_id
        )
        return
    logger.info("job %s (document %s) stage %s deferred: %s", claim.job_id, claim.document_id, claim.stage, waiting)


def give_back(claim: Claim, why: str | None = None) -> None:
    """The worker is shutting down (or the stage gave way, `why`): give the item back so a worker resumes it."""
    try:
        with session_scope() as session:
            dispatch = hand_back(session, claim, why) if why else hand_back(session, claim)
    except LeaseLost:
        logger.warning("job %s (document %s) lost its lease before it was handed back", claim.job_id, claim.document_id)
        return
    send_stage_messages([dispatch])
    logger.info(
        "job %s (document %s) stage %s handed back: %s",
        claim.job_id,
        claim.document_id,
        claim.stage,
        why or "the worker is shutting down",
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
