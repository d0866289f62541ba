"""The figures the admin dashboard and `/metrics` show, read cheaply at any table size.

`read_dashboard` costs a handful of index scans whatever the table holds:
counts are exact up to EXACT_COUNT_LIMIT rows per status and the planner's
estimate past it (marked `estimated`); the completion rate comes from the
per-minute counters the completion trigger keeps (the charts too: see
`history.py`). `SnapshotCache` shares one reading among every request of a
process for a second or two.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import redis
from sqlalchemy import text
from sqlalchemy.orm import Session

from docqueue.queue.fragments import LIVE
from docqueue.queue.heartbeats import WorkerBeat, recent_workers
from docqueue.queue.stats import today_figures
from docqueue.settings import get_settings
from docqueue.statuses import QueueStatus
from docqueue.wording import counted

#: Past this many rows of one status, a count is the planner's estimate instead of a scan.
EXACT_COUNT_LIMIT = 100_000
ACTIVE = ("pending", "queued", "processing")


@dataclass(frozen=True)
class Count:
    value: int
    estimated: bool = False


@dataclass
class Dashboard:
    """One reading of the queue, for one owner (`owner_id`) or the whole system (None)."""

    taken_at: float
    owner_id: int | None
    statuses: dict[str, Count]
    stages: dict[str, dict[str, int]]
    stages_sampled: bool
    completed_today: int
    avg_wait_minutes: float
    oldest_pending_minutes: float
    completed_per_minute: float
    backlog_eta_minutes: float | None
    admission_paused: bool
    workers: list[WorkerBeat] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def as_stats(self) -> dict:
        """The shape of `GET /api/queue/stats`."""
        value = {status: count.value for status, count in self.statuses.items()}
        return {
            "pending": value["pending"] + value["queued"],
            "processing": value["processing"],
            "failed": value["failed"],
            "cancelled": value["cancelled"],
            "completed_today": self.completed_today,
            "avg_wait_time_minutes": self.avg_wait_minutes,
            "oldest_pending_minutes": self.oldest_pending_minutes,
            "queued": value["queued"],
            "capacity": get_settings().ocr_concurrent_jobs,
            "estimated": sorted(status for status, count in self.statuses.items() if count.estimated),
        }


def read_dashboard(
    session: Session,
    stage_names: Sequence[str],
    owner_id: int | None = None,
    held_messages: Callable[[], set[tuple[int, str]]] | None = None,
) -> Dashboard:
    """Read every dashboard figure now; `held_messages` (`messages.held_messages`) enables the lost-message check.

    `stage_names` (the pipeline's, in order) are the rows of the per-stage table, shown even when empty.
    """
    settings = get_settings()
    statuses = {status: _count(session, status, owner_id) for status in QueueStatus}
    stages, sampled = _stage_counts(session, stage_names, owner_id)
    completed_today, avg_wait, oldest = today_figures(session, owner_id)
    rate = _completion_rate(session, owner_id)
    backlog = sum(statuses[status].value for status in ACTIVE)
    dashboard = Dashboard(
        taken_at=time.time(),
        owner_id=owner_id,
        statuses=statuses,
        stages=stages,
        stages_sampled=sampled,
        completed_today=completed_today,
        avg_wait_minutes=avg_wait,
        oldest_pending_minutes=oldest,
        completed_per_minute=rate,
        backlog_eta_minutes=round(backlog / rate, 1) if rate and backlog else (0.0 if not backlog else None),
        admission_paused=bool(
            session.execute(text("SELECT EXISTS (SELECT 1 FROM queue_control WHERE admission_paused)")).scalar()
        ),
    )
    if owner_id is None:
        dashboard.workers = recent_workers(session)
        dashboard.warnings = _warnings(session, dashboard, settings, held_messages)
    return dashboard


def _count(session: Session, status: str, owner_id: int | None) -> Count:
    # A capped index-only count: exact for the statuses an operator watches, bounded for the big history.
    exact = session.execute(
        text(
            """
            SELECT count(*) FROM (
                SELECT 1 FROM document_queue
                WHERE status = :status AND (CAST(:owner_id AS bigint) IS NULL OR owner_id = :owner_id)
                LIMIT :cap) capped
            """
        ),
        {"status": status, "owner_id": owner_id, "cap": EXACT_COUNT_LIMIT + 1},
    ).scalar()
    if exact <= EXACT_COUNT_LIMIT:
        return Count(exact)
    owner = f" AND owner_id = {int(owner_id)}" if owner_id is not None else ""
    # `status` is a QueueStatus, so it is safe to inline: EXPLAIN needs the literal to estimate.
    plan = session.execute(
        text(f"EXPLAIN (FORMAT JSON) SELECT 1 FROM document_queue WHERE status = '{status}'{owner}")
    ).scalar()
    return Count(max(int(plan[0]["Plan"]["Plan Rows"]), exact), estimated=True)


def _stage_counts(
    session: Session, stage_names: Sequence[str], owner_id: int | None
) -> tuple[dict[str, dict[str, int]], bool]:
    """Live jobs per stage and status; `sampled` when more than EXACT_COUNT_LIMIT were live (then counts are of the first ones)."""
    rows = session.execute(
        text(
            f"""
            SELECT stage, status, count(*) FROM (
                SELECT stage, status FROM document_queue
                WHERE status IN ({LIVE})
                  AND (CAST(:owner_id AS bigint) IS NULL OR owner_id = :owner_id)
                LIMIT :cap) live
            GROUP BY 1, 2
            """
        ),
        {"owner_id": owner_id, "cap": EXACT_COUNT_LIMIT + 1},
    ).all()
    stages = {name: dict.fromkeys(ACTIVE, 0) for name in stage_names}
    for stage, status, count in rows:
        stages.setdefault(stage, dict.fromkeys(ACTIVE, 0))[status] = count
    return stages, sum(row[2] for row in rows) > EXACT_COUNT_LIMIT


def _completion_rate(session: Session, owner_id: int | None) -> float:
    """Completions per minute over the last 15 minutes."""
    if owner_id is None:
        sql = "SELECT COALESCE(sum(completed), 0) FROM queue_minute_stats WHERE minute >= now() - interval '15 minutes'"
    else:
        sql = (
            f"SELECT count(*) FROM document_queue WHERE status = '{QueueStatus.COMPLETED}' AND owner_id = :owner_id "
            "AND completed_at >= now() - interval '15 minutes'"
        )
    return round(float(session.execute(text(sql), {"owner_id": owner_id}).scalar()) / 15, 2)


def _warnings(session: Session, dashboard: Dashboard, settings, held_messages) -> list[str]:
    warnings = []
    # Three missed beats: the worker is stuck or dead; recovery takes its jobs back when their leases lapse.
    stale_after = 3 * settings.heartbeat_interval_seconds
    live = [worker for worker in dashboard.workers if worker.age_seconds <= stale_after]
    for worker in dashboard.workers:
        if worker.age_seconds > stale_after:
            warnings.append(
                f"worker {worker.worker_id} last beat {worker.age_seconds:.0f} s ago "
                f"(it beats every {settings.heartbeat_interval_seconds} s): it is stuck or has stopped"
            )
    waiting = sum(dashboard.statuses[status].value for status in ACTIVE)
    if waiting and not live:
        warnings.append(f"{counted(waiting, 'job')} wait or run but no worker is alive: is a worker process running?")
    if dashboard.admission_paused and dashboard.statuses["pending"].value:
        pending = dashboard.statuses["pending"].value
        warnings.append(f"admission is paused: {counted(pending, 'pending job')} wait for it")
    if held_messages is not None:
        warnings.extend(_lost_messages(session, settings, held_messages))
    return warnings


#: Queued longer than this: long enough for the dispatcher's message to have reached Redis.
LOST_AFTER_SECONDS = 5

# Queued jobs are bounded by the lanes' capacity, so reading them all is cheap; the cap bounds a runaway.
_UNCLAIMED = f"""
    SELECT id, stage FROM document_queue
    WHERE status = '{QueueStatus.QUEUED}' AND dispatched_at < now() - make_interval(secs => :after)
    ORDER BY dispatched_at LIMIT :cap
"""


def _lost_messages(session: Session, settings, held_messages: Callable[[], set[tuple[int, str]]]) -> list[str]:
    """Queued jobs whose own message (job id, stage) Redis no longer holds: Postgres and Redis drifted."""
    waiting = session.execute(text(_UNCLAIMED), {"after": LOST_AFTER_SECONDS, "cap": EXACT_COUNT_LIMIT}).all()
    if not waiting:
        return []
    try:
        held = held_messages()
    except redis.RedisError as error:
        return [f"could not read the Redis queue: {type(error).__name__}"]
    # Matched per job, not by count: processing jobs' unacknowledged messages and OCR ranges share the hashes.
    lost = sum((job_id, stage) not in held for job_id, stage in waiting)
    if not lost:
        return []
    return [
        (
            f"{counted(lost, 'queued job')} with no message in Redis (Postgres and Redis drifted); "
            f"the dispatcher re-sends them after {settings.lost_message_after_seconds} s"
        )
    ]


class SnapshotCache:
    """One whole-system reading shared by every request of this process, refreshed at most every `max_age` s.

    One request at a time refreshes it; the others meanwhile get the reading
    before (or wait for the first one).
    """

    def __init__(self, max_age: float = 2.0) -> None:
        self.max_age = max_age
        self._snapshot: Dashboard | None = None
        self._refreshing = threading.Lock()

    def get(self, read) -> Dashboard:
        """The shared reading; `read()` makes a new one when it is older than `max_age`."""
        snapshot = self._snapshot
        if snapshot is not None and time.time() - snapshot.taken_at < self.max_age:
            return snapshot
        if not self._refreshing.acquire(blocking=snapshot is None):
            return snapshot
        try:
            if self._snapshot is not None and time.time() - self._snapshot.taken_at < self.max_age:
                return self._snapshot  # another request refreshed it while this one waited
            self._snapshot = read()
            return self._snapshot
        finally:
            self._refreshing.release()
