"""DocumentQueueService: every statement that changes a queue item's state.

Rules this module keeps (ARCHITECTURE.md, "How it works"):

- Postgres is the source of truth; a Redis message only names a job id.
- A worker claims with one conditional UPDATE (`claim`). If it
  matches nothing the message was a duplicate or stale and is dropped.
- Every claim gets a fresh `lease_token`. A result is published only by a
  statement that still finds that token on the row, so a worker that lost
  its lease can never publish.
- Each transition's WHERE clause names the states it may leave, and a
  trigger (see the first migration) refuses any other change of status.
- The document a user sees follows its queue item: every transition that
  changes a queue status updates the document with `_documents_follow`,
  so the mapping (`statuses.DOCUMENT_STATUS_FOR`) lives in one place.
- A permanent failure fails at once and is never requeued; a transient one
  backs off and retries while attempts are left.
- Each transition also moves the record of the stage it concerns
  (`stage_records`: its fragments are CTEs of the same statement), and
  completing a run points the document at it (`results_job_id`): readers see
  that run's outputs from then on.

A worker's transitions (claim, hand on, complete, fail) live in
`worker_steps.py`, the dispatcher's steps in `admission.py`, the shared SQL fragments in
`fragments.py`, the values and errors in `values.py`. Methods run inside
the caller's transaction and never commit, so a
document row, its blob and its queue item land together or not at all.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import text
from sqlalchemy.orm import Session

from docqueue.jobs import (
    AlreadyQueued,
    Claim,
    Dispatch,
    LeaseLost,
    PendingItem,
    RequeueResult,
)
from docqueue.queue import stage_records
from docqueue.queue.admission import DispatcherSteps
from docqueue.queue.fragments import NEW_JOBS, documents_follow
from docqueue.queue.worker_steps import WorkerSteps
from docqueue.settings import Settings, get_settings
from docqueue.statuses import FailureKind, QueueLane, QueueStatus

__all__ = ["AlreadyQueued", "Claim", "Dispatch", "DocumentQueueService", "LeaseLost", "PendingItem", "RequeueResult"]


class DocumentQueueService(WorkerSteps, DispatcherSteps):
    """The queue's state machine over one SQLAlchemy session."""

    def __init__(self, session: Session, settings: Settings | None = None) -> None:
        self.session = session
        self.settings = settings or get_settings()

    def _execute(self, sql: str, **params):
        return self.session.execute(text(sql), params)

    # -- producers -------------------------------------------------------

    def enqueue(
        self, document_id: int, stages: Sequence[str], operation: str = "process", priority: int | None = None
    ) -> int:
        """Add a pending job for the document that runs `stages` (names, in order), and mark the document pending.

        The queue knows no pipeline: its caller names the run's stages
        (`docqueue.pipeline.stage_names_from`). `priority` defaults to one
        derived from the file's size. Raises AlreadyQueued if the document
        already has a live job.
        """
        _require_stage_names(stages)
        row = self._execute(
            NEW_JOBS,
            document_ids=[document_id],
            priorities=[priority],
            stage=stages[0],
            operation=operation,
            lane=QueueLane.INTERACTIVE.value,
            max_attempts=self.settings.max_attempts,
            record_stages=list(stages),
        ).first()
        if row is None:
            if self._execute("SELECT 1 FROM documents WHERE id = :id", id=document_id).first() is None:
                raise LookupError(f"document {document_id} does not exist")
            raise AlreadyQueued(f"document {document_id} is already queued or being processed")
        return row.id

    def enqueue_many(
        self, document_ids: list[int], stages: Sequence[str], lane: QueueLane, priority: int | None = None
    ) -> int:
        """`enqueue` for many documents in one statement (bulk ingest); return how many were queued.

        Documents that already have a live job are left as they are.
        """
        _require_stage_names(stages)
        if not document_ids:
            return 0
        return len(
            self._execute(
                NEW_JOBS,
                document_ids=list(document_ids),
                priorities=[priority] * len(document_ids),
                stage=stages[0],
                operation="process",
                lane=lane.value,
                max_attempts=self.settings.max_attempts,
                record_stages=list(stages),
            ).all()
        )

    def get_pending_items(self, limit: int) -> list[PendingItem]:
        """Due pending items in admission order: best priority, then oldest."""
        rows = self._execute(
            f"""
            SELECT id, document_id, owner_id, operation, priority, created_at FROM document_queue
            WHERE status = '{QueueStatus.PENDING}' AND run_after <= now()
            ORDER BY priority DESC, created_at, id
            LIMIT :limit
            """,
            limit=limit,
        )
        return [PendingItem(*row) for row in rows]

    def requeue_failed(self, owner_id: int | None = None) -> RequeueResult:
        """Send documents whose last run failed transiently back to pending, with fresh attempts.

        Only each document's newest run counts (an older failure of a document
        processed since is history). Permanent failures are left and reported
        by reason: they would fail the same way again. `owner_id` limits it to
        one user's documents.
        """
        newest_failed = f"""
            SELECT q.id FROM document_queue q
            WHERE q.status = '{QueueStatus.FAILED}' AND (CAST(:owner_id AS bigint) IS NULL OR q.owner_id = :owner_id)
              AND NOT EXISTS (SELECT 1 FROM document_queue newer
                              WHERE newer.document_id = q.document_id AND newer.id > q.id)
        """
        requeued = self._execute(
            f"""
            WITH requeued AS (
                UPDATE document_queue q SET status = '{QueueStatus.PENDING}', run_after = now(), completed_at = NULL,
                       dispatched_at = NULL, attempts = 0, failure_kind = NULL, error_message = NULL
                WHERE q.id IN ({newest_failed}) AND q.failure_kind IS DISTINCT FROM '{FailureKind.PERMANENT}'
                RETURNING q.id, q.document_id, q.status, q.stage
            ), documents_updated AS (
                {documents_follow("requeued", error="NULL")}
            ), records AS (
                {stage_records.requeued("requeued")}
            )
            SELECT count(*) FROM requeued
            """,
            owner_id=owner_id,
        ).scalar()
        skipped = self._execute(
            f"""
            SELECT error_message, count(*) FROM document_queue
            WHERE id IN ({newest_failed}) AND failure_kind = '{FailureKind.PERMANENT}'
            GROUP BY error_message ORDER BY count(*) DESC, error_message
            """,
            owner_id=owner_id,
        )
        return RequeueResult(requeued=requeued, skipped=[(reason, count) for reason, count in skipped])


def _require_stage_names(stages: Sequence[str]) -> None:
    # A single name is a Sequence[str] too, and would make a stage record per letter.
    if isinstance(stages, str) or not stages:
        raise TypeError(f"a job is given its run's stage names, in order, not {stages!r}")
