"""A worker's transitions: claim a stage, hold the lease, hand on, go on, complete, fail.

A mixin of `DocumentQueueService` (same rules, same session: see its
docstring). Each transition is one statement whose WHERE clause names the
lease it needs (`HOLDS_LEASE`), and moves the document and the stage
record with it.
"""

from __future__ import annotations

from docqueue.backoff import jittered_interval_sql
from docqueue.jobs import Claim, Dispatch, LeaseLost
from docqueue.queue import attempts, stage_records
from docqueue.queue.fragments import (
    CLAIM_COLUMNS,
    CLAIM_RESULT,
    NEW_LEASE,
    RELEASE_LEASE,
    documents_follow,
    documents_progress,
    failure_shown,
    not_held,
)
from docqueue.queue.lease import HOLDS_LEASE, claim_params
from docqueue.statuses import FailureKind, QueueStatus


class WorkerSteps:
    """The transitions a worker makes; `DocumentQueueService` provides `_execute` and `settings`."""

    def claim(self, job_id: int, stage: str, worker_id: str) -> Claim | None:
        """Claim a queued job's stage for this worker, or None if the message was stale or its work is held
        (`claim_many` of one)."""
        claims = self.claim_many([job_id], stage, worker_id)
        return claims[0] if claims else None

    def claim_many(self, job_ids: list[int], stage: str, worker_id: str) -> list[Claim]:
        """Claim the queued jobs `job_ids` at `stage` for this worker, in one statement; the claims made, in the
        order of `job_ids`. A job missing from them had a stale message, or its work is held.

        A job whose lane or stage an operator holds stays `queued`: the clock
        re-sends its message after REDISPATCH_AFTER_SECONDS, so it runs once resumed.

        One conditional UPDATE: it matches only jobs that are `queued` at
        exactly this stage with attempts left, increments each one's `attempts`,
        starts a lease with a fresh fencing token for each row, and opens each
        attempt's history row. Each claim is fenced, failed and retried on its own.
        """
        rows = self._execute(
            f"""
            WITH claimed AS (
                UPDATE document_queue SET
                    status = '{QueueStatus.PROCESSING}', attempts = attempts + 1, started_at = COALESCE(started_at, now()),
                    {NEW_LEASE}
                WHERE id = ANY(CAST(:job_ids AS bigint[])) AND status = '{QueueStatus.QUEUED}' AND stage = :stage
                  AND attempts < max_attempts AND {not_held("document_queue")}
                RETURNING {CLAIM_COLUMNS}, status
            ), document AS (
                {documents_follow("claimed")}
            ), record AS (
                {stage_records.started("claimed")}
            ), attempt AS (
                {attempts.opened("claimed")}
            )
            {CLAIM_RESULT}
            ORDER BY array_position(CAST(:job_ids AS bigint[]), claimed.id)
            """,
            job_ids=list(job_ids),
            stage=stage,
            worker_id=worker_id,
            heartbeat_timeout=self.settings.heartbeat_timeout_seconds,
        )
        return [Claim(*row) for row in rows]

    def hold_lease(self, claim: Claim) -> None:
        """Lock the job row for this transaction if the claim still holds, else raise LeaseLost.

        Call it before writing a stage's results in the same transaction:
        recovery cannot take the job away until that transaction ends.
        """
        row = self._execute(f"SELECT 1 FROM document_queue WHERE {HOLDS_LEASE} FOR SHARE", **claim_params(claim))
        if row.first() is None:
            raise LeaseLost(f"job {claim.job_id} stage {claim.stage} attempt {claim.attempt} lost its lease")

    def advance(self, claim: Claim, next_stage: str, progress: int) -> Dispatch | None:
        """Hand the job from the claimed stage to `next_stage`; send the returned dispatch after commit.

        The document stays `processing` between its stages: only its progress
        moves. The claim's attempt closes as succeeded in the same statement.
        If an operator holds `next_stage` (or the job's lane) the job waits in
        `pending`, taking no slot, for admission once resumed: None is returned.
        """
        held = f"NOT {not_held('document_queue', ':next_stage')}"
        row = self._execute(
            f"""
            WITH advanced AS (
                UPDATE document_queue SET status = CASE WHEN {held} THEN '{QueueStatus.PENDING}' ELSE '{QueueStatus.QUEUED}' END,
                       stage = :next_stage, attempts = 0, run_after = now(),
                       dispatched_at = CASE WHEN {held} THEN NULL ELSE now() END, error_message = NULL, {RELEASE_LEASE}
                WHERE {HOLDS_LEASE}
                RETURNING id, document_id, status
            ), document AS (
                {documents_progress("advanced")}
            ), record AS (
                {stage_records.finished("advanced")}
            ), attempt AS (
                {attempts.succeeded("advanced")}
            )
            SELECT id, status FROM advanced
            """,
            next_stage=next_stage,
            progress=progress,
            stage=claim.stage,
            **claim_params(claim),
        ).first()
        if row is None:
            raise LeaseLost(f"job {claim.job_id} lost its lease before leaving stage {claim.stage}")
        return Dispatch(job_id=claim.job_id, stage=next_stage) if row.status == QueueStatus.QUEUED else None

    def continue_with(self, claim: Claim, next_stage: str, progress: int, worker_id: str) -> Claim | None:
        """Hand the job from the claimed stage to `next_stage` and claim that at once for the same worker.

        None, changing nothing, when an operator holds `next_stage` or the job's lane (or the lease is
        gone): the caller then `advance`s, which parks the job or raises LeaseLost.

        `advance` and `claim` in one statement, for a worker that
        goes on with the next stage itself instead of sending a message for
        it: no message exists that a second worker could claim, and the new
        claim has its own fencing token and lease like any other. The old
        claim's attempt closes as succeeded and the new one's opens.
        """
        row = self._execute(
            f"""
            WITH claimed AS (
                UPDATE document_queue SET stage = :next_stage, attempts = 1, error_message = NULL, {NEW_LEASE}
                WHERE {HOLDS_LEASE} AND {not_held("document_queue", ":next_stage")}
                RETURNING {CLAIM_COLUMNS}
            ), document AS (
                {documents_progress("claimed")}
            ), record AS (
                {stage_records.finished("claimed")}
            ), next_record AS (
                {stage_records.started("claimed")}
            ), attempt AS (
                {attempts.succeeded("claimed")}
            ), next_attempt AS (
                {attempts.opened("claimed")}
            )
            {CLAIM_RESULT}
            """,
            next_stage=next_stage,
            progress=progress,
            stage=claim.stage,
            worker_id=worker_id,
            heartbeat_timeout=self.settings.heartbeat_timeout_seconds,
            **claim_params(claim),
        ).first()
        return Claim(*row) if row else None

    def mark_completed(self, claim: Claim, last_stage: str | None = None) -> None:
        """Finish the job and its document, closing the attempt as succeeded; LeaseLost if the claim is gone.

        `last_stage`: the stage the job ran last, when the claim ran stages after its own (a small
        document's one pass); the job then reads as having ended there.
        """
        document_done = documents_follow(
            "completed", progress="100", error="NULL", completed_at="now()", results_job_id="completed.id"
        )
        row = self._execute(
            f"""
            WITH completed AS (
                UPDATE document_queue SET status = '{QueueStatus.COMPLETED}', completed_at = now(), error_message = NULL,
                       stage = COALESCE(CAST(:last_stage AS text), stage),
                       processing_time_ms = (extract(epoch FROM now() - started_at) * 1000)::bigint,
                       {RELEASE_LEASE}
                WHERE {HOLDS_LEASE}
                RETURNING id, document_id, status
            ), document AS (
                {document_done}
            ), record AS (
                {stage_records.finished("completed")}
            ), attempt AS (
                {attempts.succeeded("completed")}
            )
            SELECT id FROM completed
            """,
            stage=claim.stage,
            last_stage=last_stage,
            **claim_params(claim),
        ).first()
        if row is None:
            raise LeaseLost(f"job {claim.job_id} lost its lease before completing")

    def mark_failed(self, claim: Claim, error_message: str, kind: FailureKind, traceback: str | None = None) -> str:
        """Record a failed attempt; return the job's new status.

        A transient failure with attempts left goes back to `pending` after
        an exponential backoff with jitter (`docqueue.backoff`); a permanent one, or the last attempt, fails
        the job and its document. A crash's `traceback` is kept on the job
        for operators (the job page's attempt history), never shown on the
        document.
        """
        retry = f"(:kind = '{FailureKind.TRANSIENT}' AND attempts < max_attempts)"
        row = self._execute(
            f"""
            WITH failed AS (
                UPDATE document_queue SET
                    status = CASE WHEN {retry} THEN '{QueueStatus.PENDING}' ELSE '{QueueStatus.FAILED}' END,
                    run_after = now() + {jittered_interval_sql(":backoff", "attempts - 1")},
                    completed_at = CASE WHEN {retry} THEN NULL ELSE now() END,
                    error_message = :error_message, failure_kind = :kind, error_traceback = :traceback,
                    dispatched_at = NULL, {RELEASE_LEASE}
                WHERE {HOLDS_LEASE}
                RETURNING id, document_id, status, stage, attempts, max_attempts, error_message
            ), document AS (
                {documents_follow("failed", error=failure_shown("failed"))}
            ), record AS (
                {stage_records.attempt_failed("failed")}
            )
            SELECT status FROM failed
            """,
            error_message=error_message,
            kind=kind.value,
            traceback=traceback,
            backoff=self.settings.retry_backoff_seconds,
            **claim_params(claim),
        ).first()
        if row is None:
            raise LeaseLost(f"job {claim.job_id} lost its lease before recording its failure")
        return row.status
