"""What a document's owner may retry: a failed run from its failed stage, or one failed optional stage.

Each is one conditional statement on the document's newest queue item (its
WHERE clause names the state it may leave, as every transition does), which
moves the document and the stage records with it. Neither makes a new run:
the outputs already written are keyed by this run and are kept.

- A failed run goes `failed → pending` at the stage that failed, with fresh
  attempts; the stages after it, never run, are still pending.
- A completed run whose optional stage failed goes `completed → pending` at
  that stage with operation `stage_retry`: the worker runs that stage alone
  and completes the run again (`stage_runner._next_to_run`). Readers keep
  seeing the run's outputs meanwhile (`documents.results_job_id` stays).

Functions run inside the caller's transaction and never commit.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from docqueue.queue import stage_records
from docqueue.queue.fragments import documents_follow
from docqueue.statuses import STAGE_RETRY, QueueStatus, StageStatus

# The document's newest queue item: the run its page shows. Only it may be retried.
_NEWEST = "q.id = (SELECT max(id) FROM document_queue WHERE document_id = :document_id)"

# Fresh attempts, due now, no failure and no lease left over.
_FRESH = (
    f"status = '{QueueStatus.PENDING}', attempts = 0, run_after = now(), completed_at = NULL, dispatched_at = NULL, "
    "error_message = NULL, error_traceback = NULL, failure_kind = NULL"
)


class NothingToRetry(Exception):
    """The document is not in a state the retry asked for applies to; the message says why."""


def retry_failed_run(session: Session, document_id: int) -> str:
    """Send the document's failed run back to pending at the stage that failed; return that stage.

    NothingToRetry when its newest run has not failed (it is live, completed or cancelled).
    """
    row = session.execute(
        text(
            f"""
            WITH retried AS (
                UPDATE document_queue q SET {_FRESH}
                WHERE {_NEWEST} AND q.status = '{QueueStatus.FAILED}'
                RETURNING q.id, q.document_id, q.status, q.stage
            ), document AS (
                {documents_follow("retried", error="NULL")}
            ), records AS (
                {stage_records.requeued("retried")}
            )
            SELECT stage FROM retried
            """
        ),
        {"document_id": document_id},
    ).first()
    if row is None:
        raise NothingToRetry(f"document {document_id} has no failed run to retry")
    return row.stage


def retry_stage(session: Session, document_id: int, stage: str) -> None:
    """Run stage `stage` of the document's completed run again, alone (the caller checked it is optional).

    NothingToRetry unless the newest run completed with that stage failed.
    """
    row = session.execute(
        text(
            f"""
            WITH retried AS (
                UPDATE document_queue q SET {_FRESH}, stage = :stage, operation = :operation
                WHERE {_NEWEST} AND q.status = '{QueueStatus.COMPLETED}'
                  AND EXISTS (SELECT 1 FROM document_stage_records r
                              WHERE r.job_id = q.id AND r.stage = :stage AND r.status = '{StageStatus.FAILED}')
                RETURNING q.id, q.document_id, q.status, q.stage
            ), document AS (
                {documents_follow("retried")}
            ), records AS (
                {stage_records.requeued("retried")}
            )
            SELECT id FROM retried
            """
        ),
        {"document_id": document_id, "stage": stage, "operation": STAGE_RETRY},
    ).first()
    if row is None:
        raise NothingToRetry(f"stage {stage} of document {document_id} has not failed in its last completed run")
