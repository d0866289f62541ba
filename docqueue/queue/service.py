"""DocumentQueueService: every statement that changes a queue item's state.

Rules this module keeps (README, "How it works"):

- Postgres is the source of truth; a Redis message only names a job id.
- A worker claims with one conditional UPDATE (`mark_in_progress`). If it
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

The dispatcher's steps live in `admission.py`, the shared SQL fragments in
`fragments.py`, the values and errors in `values.py`. Methods run inside
the caller's transaction and never commit, so a
document row, its blob and its queue item land together or not at all.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from docqueue.queue import stage_records
from docqueue.queue.admission import DispatcherSteps
from docqueue.queue.fragments import (
    CLAIM_COLUMNS,
    CLAIM_FIELDS,
    FAILURE_SHOWN,
    HOLDS_LEASE,
    NEW_JOBS,
    RELEASE_LEASE,
    claim_params,
    documents_follow,
    stages_from,
)
from docqueue.queue.values import (
    AlreadyQueued,
    Claim,
    Dispatch,
    LeaseLost,
    PendingItem,
    RequeueResult,
)
from docqueue.settings import Settings, get_settings
from docqueue.statuses import FailureKind, QueueLane

__all__ = ["AlreadyQueued", "Claim", "Dispatch", "DocumentQueueService", "LeaseLost", "PendingItem", "RequeueResult"]


class DocumentQueueService(DispatcherSteps):
    """The queue's state machine over one SQLAlchemy session."""

    def __init__(self, session: Session, settings: Settings | None = None) -> None:
        self.session = session
        self.settings = settings or get_settings()

    def _execute(self, sql: str, **params):
        return self.session.execute(text(sql), params)

    # -- producers -------------------------------------------------------

    def enqueue(self, document_id: int, stage: str, operation: str = "process", priority: int | None = None) -> int:
        """Add a pending job for the document starting at `stage`, and mark the document pending.

        `priority` defaults to one derived from the file's size. Raises
        AlreadyQueued if the document already has a live job.
        """
        row = self._execute(
            NEW_JOBS,
            document_ids=[document_id],
            priorities=[priority],
            stage=stage,
            operation=operation,
            lane=QueueLane.INTERACTIVE.value,
            max_attempts=self.settings.max_attempts,
            record_stages=stages_from(stage),
        ).first()
        if row is None:
            if self._execute("SELECT 1 FROM documents WHERE id = :id", id=document_id).first() is None:
                raise LookupError(f"document {document_id} does not exist")
            raise AlreadyQueued(f"document {document_id} is already queued or being processed")
        return row.id

    def enqueue_many(self, document_ids: list[int], stage: str, lane: QueueLane, priority: int | None = None) -> int:
        """`enqueue` for many documents in one statement (bulk ingest); return how many were queued.

        Documents that already have a live job are left as they are.
        """
        if not document_ids:
            return 0
        return len(
            self._execute(
                NEW_JOBS,
                document_ids=list(document_ids),
                priorities=[priority] * len(document_ids),
                stage=stage,
                operation="process",
                lane=lane.value,
                max_attempts=self.settings.max_attempts,
                record_stages=stages_from(stage),
            ).all()
        )

    def get_pending_items(self, limit: int) -> list[PendingItem]:
        """Due pending items in admission order: best priority, then oldest."""
        rows = self._execute(
            """
            SELECT id, document_id, owner_id, operation, priority, created_at FROM document_queue
            WHERE status = 'pending' AND run_after <= now()
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
        newest_failed = """
            SELECT q.id FROM document_queue q
            WHERE q.status = 'failed' AND (CAST(:owner_id AS bigint) IS NULL OR q.owner_id = :owner_id)
              AND NOT EXISTS (SELECT 1 FROM document_queue newer
                              WHERE newer.document_id = q.document_id AND newer.id > q.id)
        """
        requeued = self._execute(
            f"""
            WITH requeued AS (
                UPDATE document_queue q SET status = 'pending', run_after = now(), completed_at = NULL,
                       dispatched_at = NULL, attempts = 0, failure_kind = NULL, error_message = NULL
                WHERE q.id IN ({newest_failed}) AND q.failure_kind IS DISTINCT FROM 'permanent'
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
            WHERE id IN ({newest_failed}) AND failure_kind = 'permanent'
            GROUP BY error_message ORDER BY count(*) DESC, error_message
            """,
            owner_id=owner_id,
        )
        return RequeueResult(requeued=requeued, skipped=[(reason, count) for reason, count in skipped])

    # -- workers ---------------------------------------------------------

    def mark_in_progress(self, job_id: int, stage: str, worker_id: str) -> Claim | None:
        """Claim a queued job's stage for this worker, or None if the message was stale.

        One conditional UPDATE: it matches only a job that is `queued` at
        exactly this stage with attempts left, increments `attempts`, and
        starts a lease with a fresh fencing token.
        """
        row = self._execute(
            f"""
            WITH claimed AS (
                UPDATE document_queue SET
                    status = 'processing', attempts = attempts + 1,
                    started_at = COALESCE(started_at, now()), heartbeat_at = now(),
                    lease_expires_at = now() + make_interval(secs => :heartbeat_timeout),
                    lease_token = gen_random_uuid(), worker_id = :worker_id
                WHERE id = :job_id AND status = 'queued' AND stage = :stage AND attempts < max_attempts
                RETURNING {CLAIM_COLUMNS}, status
            ), document AS (
                {documents_follow("claimed")}
            ), record AS (
                {stage_records.started("claimed")}
            )
            SELECT {CLAIM_FIELDS}, u.ocr_timeout_seconds FROM claimed JOIN users u ON u.id = claimed.owner_id
            """,
            job_id=job_id,
            stage=stage,
            worker_id=worker_id,
            heartbeat_timeout=self.settings.heartbeat_timeout_seconds,
        ).first()
        return Claim(*row) if row else None

    def hold_lease(self, claim: Claim) -> None:
        """Lock the job row for this transaction if the claim still holds, else raise LeaseLost.

        Call it before writing a stage's results in the same transaction:
        recovery cannot take the job away until that transaction ends.
        """
        row = self._execute(f"SELECT 1 FROM document_queue WHERE {HOLDS_LEASE} FOR SHARE", **claim_params(claim))
        if row.first() is None:
            raise LeaseLost(f"job {claim.job_id} stage {claim.stage} attempt {claim.attempt} lost its lease")

    def advance(self, claim: Claim, next_stage: str, progress: int) -> Dispatch:
        """Hand the job from the claimed stage to `next_stage`; send the returned dispatch after commit.

        The document stays `processing` between its stages: only its progress moves.
        """
        row = self._execute(
            f"""
            WITH advanced AS (
                UPDATE document_queue SET status = 'queued', stage = :next_stage, attempts = 0,
                       dispatched_at = now(), error_message = NULL, {RELEASE_LEASE}
                WHERE {HOLDS_LEASE}
                RETURNING id, document_id
            ), document AS (
                UPDATE documents d SET progress = GREATEST(d.progress, :progress), updated_at = now()
                FROM advanced WHERE d.id = advanced.document_id
            ), record AS (
                {stage_records.finished("advanced")}
            )
            SELECT id FROM advanced
            """,
            next_stage=next_stage,
            progress=progress,
            stage=claim.stage,
            **claim_params(claim),
        ).first()
        if row is None:
            raise LeaseLost(f"job {claim.job_id} lost its lease before leaving stage {claim.stage}")
        return Dispatch(job_id=claim.job_id, stage=next_stage)

    def mark_completed(self, claim: Claim) -> None:
        """Finish the job and its document; raises LeaseLost if the claim no longer holds."""
        row = self._execute(
            f"""
            WITH completed AS (
                UPDATE document_queue SET status = 'completed', completed_at = now(), error_message = NULL,
                       processing_time_ms = (extract(epoch FROM now() - started_at) * 1000)::bigint,
                       {RELEASE_LEASE}
                WHERE {HOLDS_LEASE}
                RETURNING id, document_id, status
            ), document AS (
                {
                documents_follow(
                    "completed", progress="100", error="NULL", completed_at="now()", results_job_id="completed.id"
                )
            }
            ), record AS (
                {stage_records.finished("completed")}
            )
            SELECT id FROM completed
            """,
            stage=claim.stage,
            **claim_params(claim),
        ).first()
        if row is None:
            raise LeaseLost(f"job {claim.job_id} lost its lease before completing")

    def mark_failed(self, claim: Claim, error_message: str, kind: FailureKind, traceback: str | None = None) -> str:
        """Record a failed attempt; return the job's new status.

        A transient failure with attempts left goes back to `pending` after
        an exponential backoff; a permanent one, or the last attempt, fails
        the job and its document. A crash's `traceback` is kept on the job
        for operators (the job page's attempt history), never shown on the
        document.
        """
        retry = "(:kind = 'transient' AND attempts < max_attempts)"
        row = self._execute(
            f"""
            WITH failed AS (
                UPDATE document_queue SET
                    status = CASE WHEN {retry} THEN 'pending' ELSE 'failed' END,
                    run_after = now() + make_interval(secs => :backoff * power(2, attempts - 1)),
                    completed_at = CASE WHEN {retry} THEN NULL ELSE now() END,
                    error_message = :error_message, failure_kind = :kind, error_traceback = :traceback,
                    dispatched_at = NULL, {RELEASE_LEASE}
                WHERE {HOLDS_LEASE}
                RETURNING id, document_id, status, stage, attempts, max_attempts, error_message
            ), document AS (
                {documents_follow("failed", error=FAILURE_SHOWN.format(source="failed"))}
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

    # -- reporting ---------------------------------------------------------

    def get_queue_stats(self) -> dict:
        """Counts and wait times for the API and the admin page.

        Counts of live states are index-only scans of those states' rows;
        today's completions and waits come from the counters a trigger keeps
        in `queue_daily_stats`, so neither grows with the table's history
        nor with a busy day. The wait is from upload to first claim, over
        the jobs completed today (UTC days of the database's `current_date`).
        """
        row = self._execute(
            """
            WITH today AS (
                SELECT COALESCE(sum(completed), 0)::bigint AS completed,
                       sum(wait_seconds) / NULLIF(sum(completed), 0) / 60 AS avg_wait
                FROM queue_daily_stats WHERE day = current_date
            )
            SELECT
                (SELECT count(*) FROM document_queue WHERE status = 'pending') AS waiting,
                (SELECT count(*) FROM document_queue WHERE status = 'queued') AS queued,
                (SELECT count(*) FROM document_queue WHERE status = 'processing') AS processing,
                (SELECT count(*) FROM document_queue WHERE status = 'failed') AS failed,
                today.completed AS completed_today,
                today.avg_wait AS avg_wait_minutes,
                -- Two single-status minimums: each is the first entry of the (status, created_at) index.
                extract(epoch FROM now() - LEAST(
                    (SELECT min(created_at) FROM document_queue WHERE status = 'pending'),
                    (SELECT min(created_at) FROM document_queue WHERE status = 'queued'))) / 60
                    AS oldest_pending_minutes
            FROM today
            """
        ).one()
        return {
            "pending": row.waiting + row.queued,
            "processing": row.processing,
            "failed": row.failed,
            "completed_today": row.completed_today,
            "avg_wait_time_minutes": round(float(row.avg_wait_minutes or 0), 2),
            "oldest_pending_minutes": round(float(row.oldest_pending_minutes or 0), 2),
            "queued": row.queued,
            "capacity": self.settings.ocr_concurrent_jobs,
        }
