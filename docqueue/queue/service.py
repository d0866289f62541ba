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

Methods run inside the caller's transaction and never commit, so a
document row, its blob and its queue item land together or not at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.orm import Session

from docqueue.queue import stage_records
from docqueue.queue.attempts import closed_by_recovery
from docqueue.queue.priority import priority_for_size_sql
from docqueue.settings import Settings, get_settings
from docqueue.statuses import DOCUMENT_STATUS_FOR, FailureKind, QueueLane


class AlreadyQueued(Exception):
    """The document already has a job that is pending or running."""


class LeaseLost(Exception):
    """The worker's claim no longer holds: another attempt owns the job now."""


@dataclass(frozen=True)
class Claim:
    """What a worker holds while it runs one stage of one job."""

    job_id: int
    document_id: int
    owner_id: int
    operation: str
    stage: str
    attempt: int
    max_attempts: int
    lease_token: str
    #: The owner's per-stage time limit.
    timeout_seconds: int


@dataclass(frozen=True)
class PendingItem:
    id: int
    document_id: int
    owner_id: int
    operation: str
    priority: int
    created_at: datetime


@dataclass(frozen=True)
class Dispatch:
    """A queue item whose stage message must be sent after commit."""

    job_id: int
    stage: str


@dataclass(frozen=True)
class RecoveryCounts:
    requeued: int
    failed: int


@dataclass(frozen=True)
class RequeueResult:
    """What `requeue_failed` did: how many went back, and what it left and why."""

    requeued: int
    #: (reason, number of documents) for failures that would only fail again.
    skipped: list[tuple[str, int]]


_CLAIM_COLUMNS = "id, document_id, owner_id, operation, stage, attempts, max_attempts, lease_token::text"
_CLAIM_FIELDS = ", ".join(f"claimed.{column.split('::')[0]}" for column in _CLAIM_COLUMNS.split(", "))

# Only the holder of the current lease may publish or give up a job.
_HOLDS_LEASE = "id = :job_id AND lease_token = CAST(:lease_token AS uuid) AND status = 'processing'"

# An operator can pause admission (docqueue/queue/operator.py); running work carries on.
_ADMISSION_OPEN = "NOT EXISTS (SELECT 1 FROM queue_control WHERE admission_paused)"

# Clears the lease columns when a job leaves `processing`.
_RELEASE_LEASE = "lease_token = NULL, lease_expires_at = NULL, heartbeat_at = NULL, worker_id = NULL"


# The document's status for the queue status a CTE returns, from the one mapping in `statuses`.
_DOCUMENT_STATUS_CASE = (
    "CASE {source}.status "
    + " ".join(f"WHEN '{queue}' THEN '{document}'" for queue, document in DOCUMENT_STATUS_FOR.items())
    + " END"
)


def _documents_follow(source: str, **assignments: str) -> str:
    """An UPDATE making the documents of the queue rows in CTE `source` show their state.

    `source` must return `document_id` and the queue row's new `status`;
    `assignments` are further columns to set, as SQL expressions.
    """
    columns = {"status": _DOCUMENT_STATUS_CASE.format(source=source), "updated_at": "now()", **assignments}
    sets = ", ".join(f"{column} = {value}" for column, value in columns.items())
    return f"UPDATE documents d SET {sets} FROM {source} WHERE d.id = {source}.document_id"


# What the document says about a failed attempt: the reason, and whether it will be tried again.
_FAILURE_SHOWN = (
    "CASE {source}.status WHEN 'failed' THEN {source}.error_message "
    "ELSE format('attempt %s of %s failed, retrying: %s', {source}.attempts, {source}.max_attempts, "
    "{source}.error_message) END"
)


def _stages_from(stage: str) -> list[str]:
    """The names of `stage` and the stages after it: a run's stage records."""
    from docqueue.pipeline import PIPELINE  # the stages import this package, so not at module level

    names = [each.name for each in PIPELINE]
    return names[names.index(stage) :]


# The one definition of a new queue row, for one upload (`enqueue`) or a whole ingest batch
# (`enqueue_many`): pending at `:stage`, the given priority or one by size, fresh attempts, no
# failure; the document follows, and the run's stage records are made (`:record_stages`).
# `:priorities` pairs with `:document_ids` (NULL: by size).
_NEW_JOBS = f"""
    WITH queued AS (
        INSERT INTO document_queue
            (document_id, owner_id, operation, status, stage, priority, attempts, max_attempts, file_size, lane)
        SELECT d.id, d.owner_id, :operation, 'pending', :stage,
               COALESCE(new.priority, {priority_for_size_sql("d.size_bytes")}), 0, :max_attempts, d.size_bytes, :lane
        FROM unnest(CAST(:document_ids AS bigint[]), CAST(:priorities AS int[])) AS new (document_id, priority)
        JOIN documents d ON d.id = new.document_id
        ON CONFLICT (document_id) WHERE status IN ('pending', 'queued', 'processing') DO NOTHING
        RETURNING id, document_id, status
    ), document AS (
        -- A new document already reads pending, 0 %, no error: only a reprocessed one needs the write.
        {_documents_follow("queued", progress="0", error="NULL")}
          AND (d.status <> 'pending' OR d.progress <> 0 OR d.error IS NOT NULL)
    ), records AS (
        {stage_records.created("queued")}
    )
    SELECT id FROM queued
"""


def _claim_params(claim: Claim) -> dict:
    return {"job_id": claim.job_id, "lease_token": claim.lease_token}


class DocumentQueueService:
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
            _NEW_JOBS,
            document_ids=[document_id],
            priorities=[priority],
            stage=stage,
            operation=operation,
            lane=QueueLane.INTERACTIVE.value,
            max_attempts=self.settings.max_attempts,
            record_stages=_stages_from(stage),
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
                _NEW_JOBS,
                document_ids=list(document_ids),
                priorities=[priority] * len(document_ids),
                stage=stage,
                operation="process",
                lane=lane.value,
                max_attempts=self.settings.max_attempts,
                record_stages=_stages_from(stage),
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
                {_documents_follow("requeued", error="NULL")}
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
                RETURNING {_CLAIM_COLUMNS}, status
            ), document AS (
                {_documents_follow("claimed")}
            ), record AS (
                {stage_records.started("claimed")}
            )
            SELECT {_CLAIM_FIELDS}, u.ocr_timeout_seconds FROM claimed JOIN users u ON u.id = claimed.owner_id
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
        row = self._execute(f"SELECT 1 FROM document_queue WHERE {_HOLDS_LEASE} FOR SHARE", **_claim_params(claim))
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
                       dispatched_at = now(), error_message = NULL, {_RELEASE_LEASE}
                WHERE {_HOLDS_LEASE}
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
            **_claim_params(claim),
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
                       {_RELEASE_LEASE}
                WHERE {_HOLDS_LEASE}
                RETURNING id, document_id, status
            ), document AS (
                {
                _documents_follow(
                    "completed", progress="100", error="NULL", completed_at="now()", results_job_id="completed.id"
                )
            }
            ), record AS (
                {stage_records.finished("completed")}
            )
            SELECT id FROM completed
            """,
            stage=claim.stage,
            **_claim_params(claim),
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
                    dispatched_at = NULL, {_RELEASE_LEASE}
                WHERE {_HOLDS_LEASE}
                RETURNING id, document_id, status, stage, attempts, max_attempts, error_message
            ), document AS (
                {_documents_follow("failed", error=_FAILURE_SHOWN.format(source="failed"))}
            ), record AS (
                {stage_records.attempt_failed("failed")}
            )
            SELECT status FROM failed
            """,
            error_message=error_message,
            kind=kind.value,
            traceback=traceback,
            backoff=self.settings.retry_backoff_seconds,
            **_claim_params(claim),
        ).first()
        if row is None:
            raise LeaseLost(f"job {claim.job_id} lost its lease before recording its failure")
        return row.status

    # -- the dispatcher's steps --------------------------------------------

    def lock_dispatcher(self) -> bool:
        """Take the transaction-scoped dispatcher lock; False if another dispatcher holds it."""
        return bool(self._execute("SELECT pg_try_advisory_xact_lock(hashtext('docqueue.dispatcher'))").scalar())

    def recover_stale_jobs(self) -> RecoveryCounts:
        """Take back jobs whose worker stopped heartbeating: retry them, or fail them when out of attempts.

        A lease lapses HEARTBEAT_TIMEOUT_SECONDS after the last heartbeat; the
        attempt stays counted and is closed as lost in the attempt history.
        """
        rows = self._execute(
            f"""
            WITH stale AS (
                -- Skip, never wait for, rows a frozen process still locks: the queue row and the document
                -- row this statement updates alike, so one stopped worker cannot stall the clock.
                SELECT q.id, q.lease_token AS old_token FROM document_queue q JOIN documents d ON d.id = q.document_id
                WHERE q.status = 'processing' AND q.lease_expires_at < now()
                ORDER BY q.lease_expires_at LIMIT :batch
                FOR UPDATE OF q, d SKIP LOCKED
            ), recovered AS (
                UPDATE document_queue q SET
                    status = CASE WHEN q.attempts < q.max_attempts THEN 'pending' ELSE 'failed' END,
                    run_after = now(),
                    completed_at = CASE WHEN q.attempts < q.max_attempts THEN NULL ELSE now() END,
                    error_message = format('worker %s stopped responding during stage %s (attempt %s of %s)',
                                           q.worker_id, q.stage, q.attempts, q.max_attempts),
                    failure_kind = 'transient', error_traceback = NULL, dispatched_at = NULL, {_RELEASE_LEASE}
                FROM stale WHERE q.id = stale.id
                RETURNING q.id, q.document_id, q.status, q.stage, q.error_message, q.attempts, q.max_attempts,
                          stale.old_token
            ), documents_updated AS (
                {_documents_follow("recovered", error=_FAILURE_SHOWN.format(source="recovered"))}
            ), records AS (
                {stage_records.attempt_failed("recovered")}
            ), attempts_closed AS (
                {closed_by_recovery("recovered")}
            )
            SELECT status, count(*) FROM recovered GROUP BY status
            """,
            batch=self.settings.queue_batch_size,
        )
        counts = dict(rows.all())
        return RecoveryCounts(requeued=counts.get("pending", 0), failed=counts.get("failed", 0))

    def redispatch_lost_messages(self) -> list[Dispatch]:
        """Queued jobs no worker picked up in time: their message may be lost, so send another.

        A duplicate is harmless: only one message can win the claim.
        """
        rows = self._execute(
            """
            UPDATE document_queue SET dispatched_at = now()
            WHERE id IN (
                SELECT id FROM document_queue
                WHERE status = 'queued' AND dispatched_at < now() - make_interval(secs => :after)
                ORDER BY dispatched_at LIMIT :batch
                FOR UPDATE SKIP LOCKED)
            RETURNING id, stage
            """,
            after=self.settings.redispatch_after_seconds,
            batch=self.settings.queue_batch_size,
        )
        return [Dispatch(job_id=row.id, stage=row.stage) for row in rows]

    def admit_pending(self) -> list[Dispatch]:
        """Move due pending jobs to `queued` within capacity; send the returned dispatches after commit.

        The admission rule, in one statement (README, "Fairness"):

        - At most OCR_CONCURRENT_JOBS jobs are in flight (queued or processing).
        - Interactive before bulk: a job someone uploaded (browser, API) is
          admitted before any imported one (`docqueue ingest`, a folder upload)
          that waits, the importer's own uploads included.
        - Bulk is never starved: while bulk work waits, BULK_RESERVED_SLOTS of
          the capacity (at most all but one slot) go to it first.
        - Per-user caps bind only when others wait: a user's first
          `concurrent_ocr_jobs` in flight are their fair share and go before
          anyone's jobs beyond their share; capacity no one else claims goes
          to whoever has work, so a lone importer uses all of it. A slot it
          holds beyond its share goes to the others as soon as it frees.
        - Within those: higher priority first, then older.
        - Nothing while an operator has paused admission.

        Cost stays flat at any table size: per user and lane it reads at most
        the free slots' worth of rows from the pending (owner, lane, priority,
        age) index, and counts only the in-flight rows.
        """
        capacity = self.settings.ocr_concurrent_jobs
        rows = self._execute(
            f"""
            WITH in_flight AS (
                SELECT owner_id, lane FROM document_queue WHERE status IN ('queued', 'processing')
            ), per_user AS (
                SELECT owner_id, count(*) AS n FROM in_flight GROUP BY owner_id
            ), free AS (
                SELECT GREATEST(:capacity - count(*), 0) AS slots,
                       GREATEST(:bulk_reserved - count(*) FILTER (WHERE lane = 'bulk'), 0) AS bulk_owed
                FROM in_flight
            ), candidates AS (
                -- Each user's best jobs, interactive first, at most the free slots' worth per lane (no more
                -- can be admitted); those past the user's own share of the slots are `over_share`.
                SELECT pick.id, pick.bulk, pick.priority, pick.created_at,
                       pick.rank > u.concurrent_ocr_jobs - COALESCE(f.n, 0) AS over_share
                FROM free
                CROSS JOIN users u
                LEFT JOIN per_user f ON f.owner_id = u.id
                CROSS JOIN LATERAL (
                    SELECT mine.*, row_number() OVER (ORDER BY mine.bulk, mine.priority DESC, mine.created_at, mine.id)
                               AS rank
                    FROM (
                        (SELECT q.id, false AS bulk, q.priority, q.created_at FROM document_queue q
                         WHERE q.owner_id = u.id AND q.lane = 'interactive' AND q.status = 'pending'
                           AND q.run_after <= now()
                         ORDER BY q.priority DESC, q.created_at, q.id LIMIT free.slots)
                        UNION ALL
                        (SELECT q.id, true, q.priority, q.created_at FROM document_queue q
                         WHERE q.owner_id = u.id AND q.lane = 'bulk' AND q.status = 'pending' AND q.run_after <= now()
                         ORDER BY q.priority DESC, q.created_at, q.id LIMIT free.slots)
                    ) mine
                ) pick
            ), owed AS (
                -- The bulk jobs the reservation owes a slot to: the first few bulk ones in admission order.
                SELECT id FROM candidates WHERE bulk
                ORDER BY over_share, priority DESC, created_at, id
                LIMIT (SELECT bulk_owed FROM free)
            ), admitted AS (
                -- Top-N sorts only, and a constant limit: the planner then expects a few rows and
                -- updates them by primary key instead of hashing every pending row.
                SELECT id, row_number() OVER (ORDER BY owed DESC, bulk, over_share, priority DESC, created_at, id)
                           AS place
                FROM (
                    SELECT id, id IN (SELECT id FROM owed) AS owed, bulk, over_share, priority, created_at
                    FROM candidates
                    ORDER BY owed DESC, bulk, over_share, priority DESC, created_at, id
                    LIMIT :most
                ) top
            )
            UPDATE document_queue q SET status = 'queued', dispatched_at = now()
            FROM admitted, free
            WHERE q.id = admitted.id AND admitted.place <= free.slots AND q.status = 'pending' AND {_ADMISSION_OPEN}
            RETURNING q.id, q.stage
            """,
            capacity=capacity,
            # Interactive work always keeps at least one slot.
            bulk_reserved=min(self.settings.bulk_reserved_slots, capacity - 1),
            most=min(self.settings.queue_batch_size, capacity),
        )
        return [Dispatch(job_id=row.id, stage=row.stage) for row in rows]

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
