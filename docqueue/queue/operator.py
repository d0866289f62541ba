"""OperatorActions: what an operator does to the queue from the admin page.

The same rules as `service.py` hold here: one conditional statement per
transition, whose WHERE clause names the states it may leave (the status
trigger refuses any other edge), and every method runs in the caller's
transaction without committing. Each action also writes an audit record
naming the actor, in the same transaction, so the log and the change land
together or not at all.

A cancelled running stage loses its lease token here; its worker finds
that on its next heartbeat and stops, and `hold_lease` keeps it from
publishing anything in the meantime.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.orm import Session

from docqueue.accounts.audit import record_audit
from docqueue.models import User
from docqueue.queue.fragments import FINISHED, LIVE
from docqueue.queue.job_listing import JobFilter
from docqueue.statuses import DocumentStatus, FailureKind, QueueStatus

# Jobs that are over, one way or another: the only ones that may be deleted.
_FINISHED = f"status IN ({FINISHED})"

# Clears the lease columns when a job leaves `processing` (as in service.py): the fencing token goes with it.
_RELEASE_LEASE = "lease_token = NULL, lease_expires_at = NULL, heartbeat_at = NULL, worker_id = NULL"

# Retry the newest retryable job of each document, and only if the document has no live job:
# the one-live-job-per-document index would refuse a second. A permanent failure would fail the
# same way again (`docqueue.errors`), so it is retried only when the operator says so (`anyway`):
# the same rule as `requeue_failed`, the API's and the CLI's requeue.
_RETRYABLE = f"""
    SELECT DISTINCT ON (q.document_id) q.id FROM document_queue q
    WHERE q.id = ANY(:job_ids) AND q.status IN ('{QueueStatus.FAILED}', '{QueueStatus.CANCELLED}')
      AND (q.failure_kind IS DISTINCT FROM '{FailureKind.PERMANENT}' OR CAST(:anyway AS boolean))
      AND NOT EXISTS (SELECT 1 FROM document_queue live
                      WHERE live.document_id = q.document_id AND live.status IN ({LIVE}))
    ORDER BY q.document_id, q.id DESC
"""


@dataclass(frozen=True)
class Preview:
    """A bulk action's frozen set: `count` jobs (`permanent` of them will fail again), confirmed later by `token`."""

    token: str
    count: int
    description: str
    permanent: int = 0


class OperatorActions:
    """Operator commands over one SQLAlchemy session, each audited under `actor` (None: the CLI)."""

    def __init__(self, session: Session, actor: User | None) -> None:
        self.session = session
        self.actor = actor

    def _execute(self, sql: str, **params):
        return self.session.execute(text(sql), params)

    def _audit(self, action: str, count: int, detail: str = "") -> int:
        record_audit(self.session, self.actor, action, count, detail)
        return count

    def _by(self) -> str:
        return self.actor.email if self.actor else "the command line"

    # -- one job or a selection ---------------------------------------------

    def retry(self, job_ids: list[int], detail: str = "", *, anyway: bool = False) -> int:
        """Send failed or cancelled jobs back to pending with fresh attempts, at the stage they stopped; return how many.

        Permanent failures are left as they are unless `anyway` (the operator read why they failed and confirmed).
        """
        result = self._execute(
            f"""
            WITH retried AS (
                UPDATE document_queue SET status = '{QueueStatus.PENDING}', attempts = 0, run_after = now(), completed_at = NULL,
                       dispatched_at = NULL, error_message = NULL, error_traceback = NULL, failure_kind = NULL
                WHERE id IN ({_RETRYABLE}) AND status IN ('{QueueStatus.FAILED}', '{QueueStatus.CANCELLED}')
                RETURNING document_id
            )
            UPDATE documents d SET status = '{DocumentStatus.PENDING}', error = NULL, updated_at = now()
            FROM retried WHERE d.id = retried.document_id
            """,
            job_ids=list(job_ids),
            anyway=anyway,
        )
        action = "job.retry_anyway" if anyway else "job.retry"
        return self._audit(action, result.rowcount, detail or _ids(job_ids))

    def permanent_among(self, job_ids: list[int]) -> int:
        """How many of `job_ids` are permanent failures, which `retry` leaves unless told `anyway`."""
        return self._execute(
            f"SELECT count(*) FROM document_queue WHERE id = ANY(:job_ids) AND status = '{QueueStatus.FAILED}' "
            f"AND failure_kind = '{FailureKind.PERMANENT}'",
            job_ids=list(job_ids),
        ).scalar()

    def cancel(self, job_ids: list[int]) -> int:
        """Cancel pending, queued or running jobs; a running stage loses its lease and publishes nothing.

        Their OCR ranges go in the same statement: their readers find their claim gone within seconds.
        """
        message = f"cancelled by {self._by()}"
        result = self._execute(
            f"""
            WITH cancelled AS (
                UPDATE document_queue SET status = '{QueueStatus.CANCELLED}', completed_at = now(), error_message = :message,
                       error_traceback = NULL, dispatched_at = NULL, {_RELEASE_LEASE}
                WHERE id = ANY(:job_ids) AND status IN ({LIVE})
                RETURNING id, document_id
            ), ranges_dropped AS (
                -- Nobody may read a cancelled job's OCR ranges any more: none is left waiting to be taken.
                DELETE FROM ocr_ranges r USING cancelled WHERE r.job_id = cancelled.id
            )
            UPDATE documents d SET status = '{DocumentStatus.CANCELLED}', error = :message, updated_at = now()
            FROM cancelled WHERE d.id = cancelled.document_id
            """,
            job_ids=list(job_ids),
            message=message,
        )
        return self._audit("job.cancel", result.rowcount, _ids(job_ids))

    def delete(self, job_ids: list[int]) -> int:
        """Delete finished jobs (completed, failed, cancelled); live ones must be cancelled first. Documents stay."""
        result = self._execute(
            f"DELETE FROM document_queue WHERE id = ANY(:job_ids) AND {_FINISHED}", job_ids=list(job_ids)
        )
        return self._audit("job.delete", result.rowcount, _ids(job_ids))

    def set_priority(self, job_ids: list[int], priority: int) -> int:
        """Change the priority of jobs still waiting for admission or a worker."""
        if not 0 <= priority <= 100:
            raise ValueError("priority must be a whole number from 0 to 100")
        result = self._execute(
            "UPDATE document_queue SET priority = :priority WHERE id = ANY(:job_ids) "
            f"AND status IN ('{QueueStatus.PENDING}', '{QueueStatus.QUEUED}')",
            job_ids=list(job_ids),
            priority=priority,
        )
        return self._audit("job.priority", result.rowcount, f"priority {priority}: {_ids(job_ids)}")

    # -- the whole queue ----------------------------------------------------

    def clear_completed(self, older_than_days: int) -> int:
        """Delete completed jobs that finished more than `older_than_days` days ago; return how many."""
        if older_than_days < 0:
            raise ValueError("days must be zero or more")
        result = self._execute(
            f"""
            DELETE FROM document_queue
            WHERE status = '{QueueStatus.COMPLETED}' AND completed_at < now() - make_interval(days => :days)
            """,
            days=older_than_days,
        )
        return self._audit("queue.clear_completed", result.rowcount, f"older than {older_than_days} days")

    def set_admission_paused(self, paused: bool) -> None:
        """Stop (or restart) the dispatcher admitting pending work; running work carries on."""
        self._execute(
            """
            INSERT INTO queue_control (id, admission_paused) VALUES (1, :paused)
            ON CONFLICT (id) DO UPDATE SET admission_paused = EXCLUDED.admission_paused
            """,
            paused=paused,
        )
        self._audit("queue.pause" if paused else "queue.resume", 0)

    # -- retry all failed matching a filter: preview, then confirm -------------

    def preview_retry(self, job_filter: JobFilter) -> Preview:
        """Freeze the ids of the failed jobs matching `job_filter`; `retry_frozen(token)` retries exactly those."""
        where, params = job_filter.where_clause()
        description = job_filter.describe()
        row = self._execute(
            f"""
            INSERT INTO frozen_selections (created_by, description, job_ids)
            SELECT :actor_id, :description, COALESCE(array_agg(q.id), '{{}}')
            FROM document_queue q JOIN users u ON u.id = q.owner_id
            WHERE q.status = '{QueueStatus.FAILED}' AND {where}
            RETURNING token::text, job_ids
            """,
            actor_id=self.actor.id,
            description=description,
            **params,
        ).one()
        return Preview(row.token, len(row.job_ids), description, self.permanent_among(row.job_ids))

    def retry_frozen(self, token: str, *, anyway: bool = False) -> int:
        """Retry the jobs a preview froze (those still failed; permanent ones only `anyway`); the preview is used up.

        LookupError if the token is unknown.
        """
        unknown = LookupError("that preview is unknown or was already used: preview again")
        try:
            token = str(uuid.UUID(token))  # Postgres refuses a malformed UUID with an error, not a miss
        except ValueError:
            raise unknown from None
        row = self._execute(
            "DELETE FROM frozen_selections WHERE token = CAST(:token AS uuid) AND created_by = :actor_id "
            "RETURNING job_ids, description",
            token=token,
            actor_id=self.actor.id,
        ).first()
        if row is None:
            raise unknown
        return self.retry(row.job_ids, f"all failed matching {row.description}", anyway=anyway)

    # -- failures grouped by error -----------------------------------------

    def retry_group(self, stage: str, error_message: str, *, anyway: bool = False) -> int:
        """Retry every failed job of one failure group (its permanent failures only `anyway`)."""
        return self.retry(
            self.group_job_ids(stage, error_message), f"failure group {stage}: {error_message[:200]}", anyway=anyway
        )

    def discard_group(self, stage: str, error_message: str) -> int:
        """Delete every failed job of one failure group (their documents stay, failed)."""
        result = self._execute(
            f"DELETE FROM document_queue WHERE status = '{QueueStatus.FAILED}' AND stage = :stage AND COALESCE(error_message, '') = :error_message",
            stage=stage,
            error_message=error_message,
        )
        return self._audit("job.discard_group", result.rowcount, f"{stage}: {error_message[:200]}")

    def group_job_ids(self, stage: str, error_message: str) -> list[int]:
        """The failed jobs of one failure group."""
        rows = self._execute(
            f"SELECT id FROM document_queue WHERE status = '{QueueStatus.FAILED}' AND stage = :stage AND COALESCE(error_message, '') = :error_message",
            stage=stage,
            error_message=error_message,
        )
        return [row.id for row in rows]


def admission_paused(session: Session) -> bool:
    """Whether an operator has paused admission."""
    return bool(session.execute(text("SELECT EXISTS (SELECT 1 FROM queue_control WHERE admission_paused)")).scalar())


def _ids(job_ids: list[int]) -> str:
    shown = ", ".join(str(i) for i in list(job_ids)[:20])
    return f"jobs {shown}{' …' if len(job_ids) > 20 else ''}"
