"""The dispatcher's steps: take back stale claims, re-send lost messages, admit pending work.

A mixin of `DocumentQueueService` (same rules, same session): each step is
one statement, run by the dispatcher under its advisory lock.
"""

from __future__ import annotations

from docqueue.jobs import Dispatch, RecoveryCounts
from docqueue.queue import stage_records
from docqueue.queue.attempts import closed_by_recovery, closed_to_make_room
from docqueue.queue.fragments import (
    ADMISSION_OPEN,
    IN_FLIGHT,
    RELEASE_LEASE,
    documents_follow,
    failure_shown,
    not_held,
)
from docqueue.statuses import FailureKind, QueueLane, QueueStatus


class DispatcherSteps:
    """The dispatcher's statements; `DocumentQueueService` provides `_execute` and `settings`."""

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
                WHERE q.status = '{QueueStatus.PROCESSING}' AND q.lease_expires_at < now()
                ORDER BY q.lease_expires_at LIMIT :batch
                FOR UPDATE OF q, d SKIP LOCKED
            ), recovered AS (
                UPDATE document_queue q SET
                    status = CASE WHEN q.attempts < q.max_attempts THEN '{QueueStatus.PENDING}' ELSE '{QueueStatus.FAILED}' END,
                    run_after = now(),
                    completed_at = CASE WHEN q.attempts < q.max_attempts THEN NULL ELSE now() END,
                    error_message = format('worker %s stopped responding during stage %s (attempt %s of %s)',
                                           q.worker_id, q.stage, q.attempts, q.max_attempts),
                    failure_kind = '{FailureKind.TRANSIENT}', error_traceback = NULL, dispatched_at = NULL, {RELEASE_LEASE}
                FROM stale WHERE q.id = stale.id
                RETURNING q.id, q.document_id, q.status, q.stage, q.error_message, q.attempts, q.max_attempts,
                          stale.old_token
            ), documents_updated AS (
                {documents_follow("recovered", error=failure_shown("recovered"))}
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
            f"""
            UPDATE document_queue SET dispatched_at = now()
            WHERE id IN (
                SELECT id FROM document_queue
                WHERE status = '{QueueStatus.QUEUED}' AND dispatched_at < now() - make_interval(secs => :after)
                ORDER BY dispatched_at LIMIT :batch
                FOR UPDATE SKIP LOCKED)
            RETURNING id, stage
            """,
            after=self.settings.redispatch_after_seconds,
            batch=self.settings.queue_batch_size,
        )
        return [Dispatch(job_id=row.id, stage=row.stage) for row in rows]

    def make_room(self) -> int:
        """While every slot is taken and users with nothing in flight have work due, hand back as many running
        jobs of users past their share (`concurrent_ocr_jobs`), longest-running first; how many.

        `processing` -> `pending` at the same stage, due at once, the attempt
        not counted (closed as handed back) and the lease cleared: its worker's
        lease watch stops the stage within seconds, and it resumes after its
        last committed batch when admitted again. `admit_pending` then gives
        the freed slots to the users within their share. So a user's slow
        files never keep another user's first document from starting; a job
        only admitted (`queued`) is left, as its slot frees as soon as it runs.
        """
        rows = self._execute(
            f"""
            WITH in_flight AS (
                SELECT owner_id FROM document_queue WHERE status IN ({IN_FLIGHT})
            ), per_user AS (
                SELECT owner_id, count(*) AS n FROM in_flight GROUP BY owner_id
            ), waiting_users AS (
                SELECT count(*) AS n FROM users u
                WHERE NOT EXISTS (SELECT 1 FROM per_user p WHERE p.owner_id = u.id)
                  AND EXISTS (SELECT 1 FROM document_queue q
                              WHERE q.owner_id = u.id AND q.status = '{QueueStatus.PENDING}' AND q.run_after <= now())
            ), victims AS (
                SELECT q.id, q.lease_token AS old_token FROM document_queue q
                JOIN per_user p ON p.owner_id = q.owner_id JOIN users u ON u.id = q.owner_id
                WHERE q.status = '{QueueStatus.PROCESSING}' AND p.n > u.concurrent_ocr_jobs
                  AND (SELECT count(*) FROM in_flight) >= :capacity AND {ADMISSION_OPEN}
                ORDER BY q.started_at, q.id
                LIMIT (SELECT n FROM waiting_users)
                FOR UPDATE OF q SKIP LOCKED
            ), handed_back AS (
                UPDATE document_queue q SET status = '{QueueStatus.PENDING}', attempts = greatest(q.attempts - 1, 0),
                       run_after = now(), dispatched_at = NULL, {RELEASE_LEASE}
                FROM victims WHERE q.id = victims.id
                RETURNING q.id, q.document_id, q.status, victims.old_token
            ), documents_updated AS (
                {documents_follow("handed_back")}
            ), attempts_closed AS (
                {closed_to_make_room("handed_back")}
            )
            SELECT count(*) FROM handed_back
            """,
            capacity=self.settings.ocr_concurrent_jobs,
        )
        return rows.scalar()

    def admit_pending(self) -> list[Dispatch]:
        """Move due pending jobs to `queued` within capacity; send the returned dispatches after commit.

        The admission rule, in one statement (ARCHITECTURE.md, "Fairness"):

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
        - Nothing while an operator has paused admission, and nothing of a lane or stage
          an operator holds (`queue/pausing.py`).

        Cost stays flat at any table size: per user and lane it reads at most
        the free slots' worth of rows from the pending (owner, lane, priority,
        age) index, and counts only the in-flight rows.
        """
        capacity = self.settings.ocr_concurrent_jobs
        rows = self._execute(
            f"""
            WITH in_flight AS (
                SELECT owner_id, lane FROM document_queue WHERE status IN ({IN_FLIGHT})
            ), per_user AS (
                SELECT owner_id, count(*) AS n FROM in_flight GROUP BY owner_id
            ), free AS (
                SELECT GREATEST(:capacity - count(*), 0) AS slots,
                       GREATEST(:bulk_reserved - count(*) FILTER (WHERE lane = '{QueueLane.BULK}'), 0) AS bulk_owed
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
                         WHERE q.owner_id = u.id AND q.lane = '{QueueLane.INTERACTIVE}' AND q.status = '{QueueStatus.PENDING}'
                           AND q.run_after <= now() AND {not_held("q")}
                         ORDER BY q.priority DESC, q.created_at, q.id LIMIT free.slots)
                        UNION ALL
                        (SELECT q.id, true, q.priority, q.created_at FROM document_queue q
                         WHERE q.owner_id = u.id AND q.lane = '{QueueLane.BULK}' AND q.status = '{QueueStatus.PENDING}' AND q.run_after <= now()
                           AND {not_held("q")}
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
            UPDATE document_queue q SET status = '{QueueStatus.QUEUED}', dispatched_at = now()
            FROM admitted, free
            WHERE q.id = admitted.id AND admitted.place <= free.slots AND q.status = '{QueueStatus.PENDING}' AND {ADMISSION_OPEN}
            RETURNING q.id, q.stage, q.owner_id
            """,
            capacity=capacity,
            # Interactive work always keeps at least one slot.
            bulk_reserved=min(self.settings.bulk_reserved_slots, capacity - 1),
            most=min(self.settings.queue_batch_size, capacity),
        )
        return [Dispatch(job_id=row.id, stage=row.stage, owner_id=row.owner_id) for row in rows]
