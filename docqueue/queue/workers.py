"""Which worker processes are alive: each beats here every few seconds, busy or idle.

The dashboard lists them with their last beat and warns when beats stop or
when work waits with no worker alive. Rows of workers gone for a day are
pruned on the next beat; a worker that stops cleanly removes its own row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.orm import Session

from docqueue.settings import get_settings


def heartbeat_interval() -> float:
    """Seconds between a worker's beats: a third of the lease, at most 5 s (so a cancel is noticed within seconds)."""
    return min(get_settings().lease_seconds / 3, 5.0)


def record_worker_beat(session: Session, worker_id: str, running: int) -> None:
    """Note that `worker_id` is alive and runs `running` stages now."""
    session.execute(
        text(
            """
            INSERT INTO worker_heartbeats (worker_id, seen_at, running) VALUES (:worker_id, now(), :running)
            ON CONFLICT (worker_id) DO UPDATE SET seen_at = now(), running = EXCLUDED.running
            """
        ),
        {"worker_id": worker_id, "running": running},
    )
    session.execute(text("DELETE FROM worker_heartbeats WHERE seen_at < now() - interval '1 day'"))


def forget_worker(session: Session, worker_id: str) -> None:
    """A worker stopping cleanly takes itself off the list."""
    session.execute(text("DELETE FROM worker_heartbeats WHERE worker_id = :worker_id"), {"worker_id": worker_id})


@dataclass(frozen=True)
class WorkerBeat:
    worker_id: str
    running: int
    seen_at: datetime
    age_seconds: float


def recent_workers(session: Session, within_seconds: float = 600) -> list[WorkerBeat]:
    """Workers that beat in the last `within_seconds`, most recent first."""
    rows = session.execute(
        text(
            """
            SELECT worker_id, running, seen_at, extract(epoch FROM now() - seen_at) FROM worker_heartbeats
            WHERE seen_at >= now() - make_interval(secs => :within) ORDER BY seen_at DESC, worker_id
            """
        ),
        {"within": within_seconds},
    )
    return [WorkerBeat(row[0], row[1], row[2], float(row[3])) for row in rows]
