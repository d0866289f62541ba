"""Callback deliveries: every statement that changes one.

Rules this module keeps:

- A run that ends (completed, or failed for good) gets at most one delivery
  (`job_id` is unique), made in the transaction that ends it (`schedule`),
  with the payload fixed then: every attempt sends the same signed bytes.
- A run failed by stale-lease recovery (its worker died on the last
  attempt) ends outside a worker's transaction: the clock's sweep
  (`schedule_missed`) makes its delivery.
- A sender takes due deliveries with one UPDATE that pushes their next
  attempt out by a lease (`take_due`), so two senders never POST the same
  delivery at once; a sender that dies leaves it due again after the lease.
  The lease outlasts a POST's whole deadline, so a delivery is never sent
  again while its first POST is still open.
- A user's deliveries being sent at once (`sending_until` in the future)
  are at most CALLBACK_USER_IN_FLIGHT across all senders: one user's slow
  receivers cannot hold every I/O-lane slot, nor delay other users' POSTs.
- Each attempt is recorded with one UPDATE (`record_attempt`): delivered,
  or pending again after an exponential backoff with jitter, or failed after
  CALLBACK_MAX_ATTEMPTS. A receiver behind an open breaker is not an
  attempt (`postpone`).

Functions run inside the caller's transaction and never commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.orm import Session

from docqueue.backoff import jittered_interval_sql
from docqueue.statuses import CallbackStatus, QueueStatus

#: Seconds a taken delivery stays hidden from other senders beyond its POST's deadline (CALLBACK_TIMEOUT_SECONDS).
TAKE_LEASE_MARGIN_SECONDS = 60


# The delivery of each ended run the query's WHERE picks (`q`: its queue item): the upload's URL, else the
# owner's, and the payload fixed now, so every attempt sends (and signs) the same bytes.
_NEW_DELIVERIES = """
    INSERT INTO callback_deliveries (job_id, document_id, url, payload)
    SELECT q.id, d.id, COALESCE(d.callback_url, u.callback_url),
           json_build_object('document_id', d.id, 'status', q.status, 'error', d.error,
                             'filename', d.filename, 'completed_at', d.completed_at)::text
    FROM document_queue q JOIN documents d ON d.id = q.document_id JOIN users u ON u.id = d.owner_id"""


@dataclass(frozen=True)
class DueDelivery:
    id: int
    url: str
    payload: str
    secret: str
    #: The secret a rotation replaced, while its grace period lasts (it signs beside `secret`).
    previous_secret: str | None
    attempts: int

    @property
    def keys(self) -> list[str]:
        """The secrets that sign this delivery, the current one first."""
        return [self.secret] + ([self.previous_secret] if self.previous_secret else [])


@dataclass(frozen=True)
class DeliveryView:
    """A delivery as the API shows it."""

    id: int
    url: str
    status: str
    attempts: int
    last_status_code: int | None
    last_error: str | None
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    created_at: datetime

    def as_dict(self) -> dict:
        def iso(value):
            return value.isoformat() if value else None

        return {
            "id": self.id,
            "url": self.url,
            "status": self.status,
            "attempts": self.attempts,
            "last_status_code": self.last_status_code,
            "last_error": self.last_error,
            "next_attempt_at": iso(self.next_attempt_at) if self.status == "pending" else None,
            "delivered_at": iso(self.delivered_at),
            "created_at": iso(self.created_at),
        }


def schedule(session: Session, job_id: int) -> int | None:
    """Make the delivery for run `job_id` if it has ended and its document or owner names a URL; its id or None."""
    return session.execute(
        text(
            f"""
            {_NEW_DELIVERIES}
            WHERE q.id = :job_id AND q.status IN ('{QueueStatus.COMPLETED}', '{QueueStatus.FAILED}')
              AND COALESCE(d.callback_url, u.callback_url) IS NOT NULL
            ON CONFLICT (job_id) DO NOTHING
            RETURNING id
            """
        ),
        {"job_id": job_id},
    ).scalar()


#: How far back the clock's sweep looks for ended runs without a delivery.
SWEEP_HOURS = 24


def schedule_missed(session: Session) -> int:
    """Make deliveries for runs that failed in the last SWEEP_HOURS without one; return how many.

    Completed runs and runs a stage failed get theirs in the transaction that
    ended them; this catches those the dispatcher failed after a dead worker.
    Failed rows are few, and each is checked against the unique `job_id` index.
    """
    rows = session.execute(
        text(
            f"""
            {_NEW_DELIVERIES}
            WHERE q.status = '{QueueStatus.FAILED}' AND q.completed_at > now() - make_interval(hours => :hours)
              AND COALESCE(d.callback_url, u.callback_url) IS NOT NULL
              AND NOT EXISTS (SELECT 1 FROM callback_deliveries c WHERE c.job_id = q.id)
            ON CONFLICT (job_id) DO NOTHING
            RETURNING id
            """
        ),
        {"hours": SWEEP_HOURS},
    )
    return len(rows.all())


def take_due(session: Session, limit: int, per_user: int, post_seconds: int) -> list[DueDelivery]:
    """Take up to `limit` due deliveries for this sender, at most `per_user` in flight per owner.

    Each is hidden from other senders for `post_seconds` (a POST's deadline)
    plus TAKE_LEASE_MARGIN_SECONDS, and counts as in flight until then or
    until its attempt is recorded. Oldest due first, within each owner too.
    """
    rows = session.execute(
        text(
            f"""
            WITH sending AS (
                SELECT d.owner_id, count(*) AS n
                FROM callback_deliveries c JOIN documents d ON d.id = c.document_id
                WHERE c.status = '{CallbackStatus.PENDING}' AND c.sending_until > now()
                GROUP BY d.owner_id
            ), ranked AS (
                SELECT c.id, d.owner_id,
                       row_number() OVER (PARTITION BY d.owner_id ORDER BY c.next_attempt_at, c.id) AS place
                FROM callback_deliveries c JOIN documents d ON d.id = c.document_id
                WHERE c.status = '{CallbackStatus.PENDING}' AND c.next_attempt_at <= now()
            ), due AS (
                SELECT c.id FROM callback_deliveries c
                JOIN ranked r ON r.id = c.id LEFT JOIN sending s ON s.owner_id = r.owner_id
                WHERE r.place + COALESCE(s.n, 0) <= :per_user
                ORDER BY c.next_attempt_at LIMIT :limit
                FOR UPDATE OF c SKIP LOCKED
            ), taken AS (
                UPDATE callback_deliveries c
                SET next_attempt_at = now() + make_interval(secs => :lease),
                    sending_until = now() + make_interval(secs => :lease)
                FROM due WHERE c.id = due.id AND c.status = '{CallbackStatus.PENDING}'
                RETURNING c.id, c.url, c.payload, c.document_id, c.attempts
            )
            SELECT taken.id, taken.url, taken.payload, u.callback_secret,
                   CASE WHEN u.callback_secret_previous_until > now() THEN u.callback_secret_previous END,
                   taken.attempts
            FROM taken JOIN documents d ON d.id = taken.document_id JOIN users u ON u.id = d.owner_id
            """
        ),
        {"limit": limit, "per_user": per_user, "lease": post_seconds + TAKE_LEASE_MARGIN_SECONDS},
    )
    return [DueDelivery(*row) for row in rows]


def record_attempt(
    session: Session,
    delivery_id: int,
    *,
    delivered: bool,
    status_code: int | None,
    error: str | None,
    max_attempts: int,
    backoff_seconds: int,
) -> None:
    """Count one attempt: delivered, or pending again after backoff, or failed when attempts run out."""
    session.execute(
        text(
            f"""
            UPDATE callback_deliveries SET attempts = attempts + 1, last_status_code = :status_code,
                   last_error = :error,
                   status = CASE WHEN :delivered THEN '{CallbackStatus.DELIVERED}'
                                 WHEN attempts + 1 >= :max_attempts THEN '{CallbackStatus.FAILED}' ELSE '{CallbackStatus.PENDING}' END,
                   delivered_at = CASE WHEN :delivered THEN now() END, sending_until = NULL,
                   next_attempt_at = now() + {jittered_interval_sql(":backoff", "attempts")}
            WHERE id = :id AND status = '{CallbackStatus.PENDING}'
            """
        ),
        {
            "id": delivery_id,
            "delivered": delivered,
            "status_code": status_code,
            "error": error,
            "max_attempts": max_attempts,
            "backoff": backoff_seconds,
        },
    )


def postpone(session: Session, delivery_id: int, until: datetime, reason: str) -> None:
    """Leave the delivery pending until `until` without counting an attempt (the breaker is open)."""
    session.execute(
        text(
            "UPDATE callback_deliveries SET next_attempt_at = :until, last_error = :reason, sending_until = NULL "
            f"WHERE id = :id AND status = '{CallbackStatus.PENDING}'"
        ),
        {"id": delivery_id, "until": until, "reason": reason},
    )


def any_due(session: Session) -> bool:
    """Whether a delivery is due now (the clock then asks a worker to send)."""
    return bool(
        session.execute(
            text(
                "SELECT EXISTS (SELECT 1 FROM callback_deliveries "
                f"WHERE status = '{CallbackStatus.PENDING}' AND next_attempt_at <= now())"
            )
        ).scalar()
    )


def deliveries_for(session: Session, document_id: int) -> list[DeliveryView]:
    """The document's deliveries, newest run first."""
    rows = session.execute(
        text(
            """
            SELECT id, url, status, attempts, last_status_code, last_error, next_attempt_at, delivered_at, created_at
            FROM callback_deliveries WHERE document_id = :document_id ORDER BY id DESC
            """
        ),
        {"document_id": document_id},
    )
    return [DeliveryView(*row) for row in rows]
