"""How a worker's heartbeat tells a running stage that its claim is gone.

A stage's lease can be taken away while it runs (an operator cancelled the
job, or recovery gave it to another attempt). Publishing is already refused
then (`hold_lease`), but the stage would run to its end for nothing. The
heartbeat learns which leases it could not renew and calls `signal_lost`;
the stage waits on the event `watching` gave it and stops at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

#: job id -> (when the stage began watching, its event)
_events: dict[int, tuple[float, threading.Event]] = {}
_lock = threading.Lock()


@contextmanager
def watching(job_id: int) -> Iterator[threading.Event]:
    """An event set when this process's heartbeat finds it no longer holds `job_id`'s lease."""
    entry = (time.monotonic(), threading.Event())
    with _lock:
        _events[job_id] = entry
    try:
        yield entry[1]
    finally:
        with _lock:
            if _events.get(job_id) is entry:
                del _events[job_id]


def signal_lost(job_ids: Iterable[int], checked_since: float) -> None:
    """Wake the stages running `job_ids` in this process: their leases are gone.

    `checked_since` is when (time.monotonic()) the renewal that found them gone
    began: a stage that began watching after it had not claimed its job yet then.
    """
    with _lock:
        for job_id in job_ids:
            began, event = _events.get(job_id, (checked_since, None))
            if event is not None and began < checked_since:
                event.set()
