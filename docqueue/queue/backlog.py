"""The scaling signal: per lane, the unfinished documents, the seconds of work they still need, the oldest wait.

What an autoscaler watches (`/metrics`, `/api/queue/stats`). The seconds are
an estimate: each unfinished job counts the recent average attempt duration
(`history.stage_timings`) of its current stage and of every stage after it.
A stage with no attempt in that window counts nothing, so right after a
start, before any timing exists, the seconds are a floor and the document
count is the figure to scale on.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from sqlalchemy import text
from sqlalchemy.orm import Session

from docqueue.queue.history import StageTiming, stage_timings
from docqueue.statuses import QueueLane, QueueStatus

_LIVE = [QueueStatus.PENDING.value, QueueStatus.QUEUED.value, QueueStatus.PROCESSING.value]
_WAITING = [QueueStatus.PENDING.value, QueueStatus.QUEUED.value]

# One pass over the live rows (the status index): at most the in-flight cap plus the backlog.
_BY_LANE_AND_STAGE = """
    SELECT lane, stage, count(*) AS jobs,
           count(*) FILTER (WHERE status = ANY(:waiting)) AS waiting,
           extract(epoch FROM now() - min(created_at) FILTER (WHERE status = ANY(:waiting))) AS oldest
    FROM document_queue
    WHERE status = ANY(:live) AND (CAST(:owner_id AS bigint) IS NULL OR owner_id = :owner_id)
    GROUP BY lane, stage
"""


@dataclass(frozen=True)
class LaneBacklog:
    """One admission lane's unfinished work."""

    #: Documents not finished: waiting for admission or a worker, or running.
    documents: int
    #: Of those, the ones no worker has started yet (pending or queued).
    waiting: int
    #: Estimated worker seconds to finish them all (see the module's note).
    seconds: float
    #: Age of the oldest waiting one, from its upload; 0 when none waits.
    oldest_wait_seconds: float

    def as_dict(self) -> dict:
        return asdict(self)


class TimingsCache:
    """The recent stage timings, read at most every `max_age` seconds per process.

    They read the last minutes of `job_events`, which grows with throughput;
    the averages move slowly, so every stats request need not pay for them.
    """

    def __init__(self, max_age: float = 30.0) -> None:
        self.max_age = max_age
        self._lock = threading.Lock()
        self._read_at = 0.0
        self._timings: list[StageTiming] = []

    def get(self, session: Session) -> list[StageTiming]:
        """The cached timings, read again through `session` when older than `max_age`."""
        with self._lock:
            if time.monotonic() - self._read_at >= self.max_age:
                self._timings = stage_timings(session)
                self._read_at = time.monotonic()
            return self._timings


def remaining_seconds(timings: list[StageTiming], stage_names: Sequence[str]) -> dict[str, float]:
    """Per stage: the recent average seconds of that stage and every stage after it (`stage_names`, in order)."""
    average = {timing.stage: timing.avg_seconds for timing in timings}
    remaining, total = {}, 0.0
    for name in reversed(stage_names):
        total += average.get(name, 0.0)
        remaining[name] = total
    return remaining


def lane_backlog(
    session: Session, timings: list[StageTiming], stage_names: Sequence[str], owner_id: int | None = None
) -> dict[str, LaneBacklog]:
    """Each lane's backlog (every lane present, zeros included), for the whole queue or one owner."""
    rows = session.execute(text(_BY_LANE_AND_STAGE), {"live": _LIVE, "waiting": _WAITING, "owner_id": owner_id}).all()
    per_stage = remaining_seconds(timings, stage_names)
    lanes = {lane.value: LaneBacklog(0, 0, 0.0, 0.0) for lane in QueueLane}
    for row in rows:
        current = lanes.setdefault(row.lane, LaneBacklog(0, 0, 0.0, 0.0))
        lanes[row.lane] = LaneBacklog(
            documents=current.documents + row.jobs,
            waiting=current.waiting + row.waiting,
            seconds=current.seconds + row.jobs * per_stage.get(row.stage, 0.0),
            oldest_wait_seconds=max(current.oldest_wait_seconds, float(row.oldest or 0)),
        )
    return {
        lane: LaneBacklog(b.documents, b.waiting, round(b.seconds, 1), round(b.oldest_wait_seconds, 1))
        for lane, b in lanes.items()
    }
