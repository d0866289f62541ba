"""Worker heartbeats: the one statement that keeps a worker's claims alive, and who is alive.

Rules:

- Every HEARTBEAT_INTERVAL_SECONDS a worker process sends one statement that
  renews every item it is running (`heartbeat_at`, and `lease_expires_at`
  HEARTBEAT_TIMEOUT_SECONDS after it) and records the process as alive in
  `worker_heartbeats`, even when it runs nothing.
- Only rows still claimed by this worker are renewed: once the clock has
  taken an item back (its lease lapsed), a late beat cannot revive it.
- The clock reads `worker_heartbeats` to tell when work waits and no worker
  has been seen for NO_WORKER_ALERT_SECONDS.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.orm import Session

from docqueue.settings import get_settings

# Presence and renewal in one round trip: the beat costs the same however many items run.
_BEAT = """
    WITH presence AS (
        INSERT INTO worker_heartbeats AS w (worker_id, running) VALUES (:worker_id, cardinality(CAST(:job_ids AS bigint[])))
        ON CONFLICT (worker_id) DO UPDATE SET last_seen_at = now(), running = EXCLUDED.running
    ), renewed AS (
        UPDATE document_queue SET heartbeat_at = now(),
               lease_expires_at = now() + make_interval(secs => :timeout)
        WHERE id = ANY(CAST(:job_ids AS bigint[])) AND worker_id = :worker_id AND status = 'processing'
        RETURNING id
    )
    SELECT count(*) FROM renewed
"""

# Work that should be moving: admitted or due, not waiting out a retry backoff.
_WAITING_WORK = """
    SELECT count(*) FROM document_queue
    WHERE status = 'queued' OR (status = 'pending' AND run_after <= now())
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


def beat(session: Session, worker_id: str, job_ids: list[int]) -> int:
    """Renew the claims of `job_ids` this worker still holds and mark it alive; return how many held."""
    return session.execute(
        text(_BEAT),
        {"worker_id": worker_id, "job_ids": list(job_ids), "timeout": get_settings().heartbeat_timeout_seconds},
    ).scalar_one()


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
