"""Worker heartbeats: the one statement that keeps a worker's claims alive, and who is alive.

Rules:

- Every HEARTBEAT_INTERVAL_SECONDS a worker process sends one statement that
  renews every item it is running (`heartbeat_at`, and `lease_expires_at`
  HEARTBEAT_TIMEOUT_SECONDS after it) and records the process as alive in
  `worker_heartbeats`, even when it runs nothing.
- Only rows still claimed by this worker are renewed: once the clock has
  taken an item back (its lease lapsed) or an operator cancelled it, a late
  beat cannot revive it; the ids it could not renew tell the worker to stop
  those stages (`docqueue.runtime.lease_watch`). Between beats a cheaper read
  (`held_claims`) asks the same, so a cancel takes effect within seconds.
- The clock reads `worker_heartbeats` to tell when work waits and no worker
  has been seen for NO_WORKER_ALERT_SECONDS; the dashboard lists them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.orm import Session

from docqueue.settings import get_settings
from docqueue.statuses import QueueStatus

# Presence and renewal in one round trip: the beat costs the same however many items run.
_BEAT = f"""
    WITH presence AS (
        INSERT INTO worker_heartbeats AS w (worker_id, running) VALUES (:worker_id, cardinality(CAST(:job_ids AS bigint[])))
        ON CONFLICT (worker_id) DO UPDATE SET last_seen_at = now(), running = EXCLUDED.running
    ), renewed AS (
        UPDATE document_queue SET heartbeat_at = now(),
               lease_expires_at = now() + make_interval(secs => :timeout)
        WHERE id = ANY(CAST(:job_ids AS bigint[])) AND worker_id = :worker_id AND status = '{QueueStatus.PROCESSING}'
        RETURNING id
    )
    SELECT id FROM renewed
"""

# The claims of `:job_ids` this worker still holds: what a beat would renew, without renewing.
_HELD = f"""
    SELECT id FROM document_queue
    WHERE id = ANY(CAST(:job_ids AS bigint[])) AND worker_id = :worker_id AND status = '{QueueStatus.PROCESSING}'
"""

# Which of the claims (job id, lease token) given still hold, by whichever worker.
_CLAIMS_HOLDING = f"""
    SELECT q.id, q.lease_token::text FROM document_queue q
    JOIN unnest(CAST(:job_ids AS bigint[]), CAST(:tokens AS uuid[])) AS c (id, token)
      ON q.id = c.id AND q.lease_token = c.token
    WHERE q.status = '{QueueStatus.PROCESSING}'
"""

# Worker processes heard from within a lease's timeout: those admission spreads stage messages over.
_LIVE_WORKERS = "SELECT count(*) FROM worker_heartbeats WHERE last_seen_at > now() - make_interval(secs => :timeout)"

# Work that should be moving: admitted or due, not waiting out a retry backoff.
_WAITING_WORK = f"""
    SELECT count(*) FROM document_queue
    WHERE status = '{QueueStatus.QUEUED}' OR (status = '{QueueStatus.PENDING}' AND run_after <= now())
"""


@dataclass(frozen=True)
class Liveness:
    """Whether work waits with no worker to do it."""

    waiting_jobs: int
    #: Seconds since any worker's last heartbeat; None if no worker ever beat.
    seconds_since_last_worker: float | None

    def unattended(self, watched_for: float) -> bool:
        """Whether work waits and no worker was heard from for NO_WORKER_ALERT_SECONDS.

        `watched_for` is how long the caller has been watching: with no
        heartbeat on record at all, workers get that long to start.
        """
        silence = watched_for if self.seconds_since_last_worker is None else self.seconds_since_last_worker
        return self.waiting_jobs > 0 and silence > get_settings().no_worker_alert_seconds


def beat(session: Session, worker_id: str, job_ids: list[int]) -> set[int]:
    """Renew the claims of `job_ids` this worker still holds and mark it alive; return the ids that held."""
    rows = session.execute(
        text(_BEAT),
        {"worker_id": worker_id, "job_ids": list(job_ids), "timeout": get_settings().heartbeat_timeout_seconds},
    )
    return {row.id for row in rows}


def live_workers(session: Session) -> int:
    """How many worker processes beat within the last HEARTBEAT_TIMEOUT_SECONDS."""
    return session.execute(text(_LIVE_WORKERS), {"timeout": get_settings().heartbeat_timeout_seconds}).scalar()


def held_claims(session: Session, worker_id: str, job_ids: list[int]) -> set[int]:
    """The ids of `job_ids` whose claim this worker still holds (read only: renews nothing)."""
    if not job_ids:
        return set()
    rows = session.execute(text(_HELD), {"worker_id": worker_id, "job_ids": list(job_ids)})
    return {row.id for row in rows}


def claims_holding(session: Session, claims: list[tuple[int, str]]) -> set[tuple[int, str]]:
    """Those of `claims` (job id, lease token) that still hold, whoever holds them (read only)."""
    if not claims:
        return set()
    rows = session.execute(
        text(_CLAIMS_HOLDING), {"job_ids": [job for job, _ in claims], "tokens": [token for _, token in claims]}
    )
    return {(row[0], row[1]) for row in rows}


def forget_worker(session: Session, worker_id: str) -> None:
    """A worker that stops cleanly says so: it is no longer counted as alive."""
    session.execute(text("DELETE FROM worker_heartbeats WHERE worker_id = :worker_id"), {"worker_id": worker_id})


def liveness(session: Session) -> Liveness:
    """How much work waits, and how long since any worker was heard from."""
    row = session.execute(
        text(
            f"""
            SELECT ({_WAITING_WORK}) AS waiting,
                   extract(epoch FROM now() - (SELECT max(last_seen_at) FROM worker_heartbeats)) AS silence
            """
        )
    ).one()
    return Liveness(waiting_jobs=row.waiting, seconds_since_last_worker=row.silence)


@dataclass(frozen=True)
class WorkerBeat:
    worker_id: str
    running: int
    seen_at: datetime
    age_seconds: float


def recent_workers(session: Session, within_seconds: float = 600) -> list[WorkerBeat]:
    """Workers that beat in the last `within_seconds`, most recent first (the dashboard's live workers)."""
    rows = session.execute(
        text(
            """
            SELECT worker_id, running, last_seen_at, extract(epoch FROM now() - last_seen_at) FROM worker_heartbeats
            WHERE last_seen_at >= now() - make_interval(secs => :within) ORDER BY last_seen_at DESC, worker_id
            """
        ),
        {"within": within_seconds},
    )
    return [WorkerBeat(row[0], row[1], row[2], float(row[3])) for row in rows]
