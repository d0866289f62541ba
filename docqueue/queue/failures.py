"""What the failures page reads: failed jobs grouped by error, split by whether trying again can help.

Like Sidekiq's Dead set beside its Retries: a permanent failure ("will fail
again": the file is the problem, or a bug) is kept apart from a transient
one that used up its attempts ("may pass now": a service was down), and
jobs still backing off between attempts are listed with their next try.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.orm import Session

from docqueue.statuses import FailureKind, QueueStatus


@dataclass(frozen=True)
class FailureGroup:
    stage: str
    error_message: str
    count: int
    kind: FailureKind

    @property
    def error_class(self) -> str:
        """The exception class a crash names ("extract_text failed: ValueError: ..."), else "rejected"."""
        head, _, rest = self.error_message.partition(" failed: ")
        kind, colon, _ = rest.partition(":")
        return kind if head and colon and kind.isidentifier() else "rejected"

    @property
    def will_fail_again(self) -> bool:
        """Whether another attempt would fail the same way (only an operator's "retry anyway" retries it)."""
        return self.kind is FailureKind.PERMANENT


@dataclass(frozen=True)
class ScheduledRetry:
    """A job backing off after a transient failure: it tries again on its own at `next_try_at`."""

    job_id: int
    document_id: int
    filename: str
    stage: str
    attempts: int
    max_attempts: int
    error_message: str
    next_try_at: datetime


def failure_groups(session: Session, limit: int = 50) -> list[FailureGroup]:
    """Failed jobs grouped by kind, stage and error message, largest group first.

    A failure recorded without a kind (before kinds were kept) may pass, as `requeue_failed` treats it.
    """
    rows = session.execute(
        text(
            f"""
            SELECT stage, COALESCE(error_message, '') AS error_message, count(*) AS count,
                   COALESCE(failure_kind, '{FailureKind.TRANSIENT}') AS kind
            FROM document_queue WHERE status = '{QueueStatus.FAILED}'
            GROUP BY 1, 2, 4 ORDER BY 3 DESC, 2 LIMIT :limit
            """
        ),
        {"limit": limit},
    )
    return [FailureGroup(stage, message, count, FailureKind(kind)) for stage, message, count, kind in rows]


def scheduled_retries(session: Session, limit: int = 50) -> list[ScheduledRetry]:
    """Jobs waiting to try again after a transient failure, soonest first."""
    rows = session.execute(
        text(
            f"""
            SELECT q.id, q.document_id, d.filename, q.stage, q.attempts, q.max_attempts,
                   COALESCE(q.error_message, ''), q.run_after
            FROM document_queue q JOIN documents d ON d.id = q.document_id
            WHERE q.status = '{QueueStatus.PENDING}' AND q.failure_kind = '{FailureKind.TRANSIENT}' AND q.run_after > now()
            ORDER BY q.run_after, q.id LIMIT :limit
            """
        ),
        {"limit": limit},
    )
    return [ScheduledRetry(*row) for row in rows]
