"""How a running stage learns that it must stop: its claim is gone, or its time is up.

A stage's lease can be taken away while it runs (an operator cancelled the
job, or recovery gave it to another attempt). Publishing is already refused
then (`hold_lease`), but the stage would run to its end for nothing. The
heartbeat learns which leases it could not renew and calls `signal_lost`;
the stage waits on the event `watching` gave it and stops at once.

A stage in a PDF process is killed at its time limit by the pool. One that
runs in this process (the worker thread: chunking; the I/O lane) cannot be
killed, so `watching` also keeps its deadline and the stage's own batches
ask `check_time` before they commit (`stages.checkpoints.committing_batch`),
as the runner does before publishing: past its limit, the stage stops there
and its batch is rolled back. A call that blocks (a slow database, an AI
request within AI_TIMEOUT_SECONDS) is not interrupted; the stage stops when
it returns.

An OCR range read by another worker runs under the claim of the stage's
own worker, which this process does not hold: the range's reader
`follows` that claim (its job id and lease token), and the heartbeat asks
whether followed claims still hold as often as it asks of its own, so a
cancel stops every reader of the job within seconds too.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from docqueue.errors import StageTimeout


@dataclass(frozen=True)
class _Watch:
    #: When (time.monotonic()) the stage began watching.
    began: float
    #: Seconds the stage may run in this process; None: the pool or the stage itself limits it.
    time_limit: float | None
    lost: threading.Event = field(default_factory=threading.Event)


#: job id -> the watch of the stage running it in this process
_watches: dict[int, _Watch] = {}
#: (job id, lease token) of another process's claim -> the events of the readers here that follow it
_followers: dict[tuple[int, str], list[threading.Event]] = {}
_lock = threading.Lock()


@contextmanager
def watching(job_id: int, time_limit: float | None = None) -> Iterator[threading.Event]:
    """An event set when this process's heartbeat finds it no longer holds `job_id`'s lease.

    With `time_limit`, `check_time(job_id)` raises once that many seconds have passed.
    """
    watch = _Watch(time.monotonic(), time_limit)
    with _lock:
        _watches[job_id] = watch
    try:
        yield watch.lost
    finally:
        with _lock:
            if _watches.get(job_id) is watch:
                del _watches[job_id]


def lost_event(job_id: int) -> threading.Event | None:
    """The event of the stage watching `job_id` in this process (`watching`), if one is."""
    with _lock:
        watch = _watches.get(job_id)
    return watch.lost if watch is not None else None


@contextmanager
def following(job_id: int, lease_token: str) -> Iterator[threading.Event]:
    """An event set when the heartbeat finds that claim (`job_id` held with `lease_token`, by any worker) gone."""
    key, lost = (job_id, lease_token), threading.Event()
    with _lock:
        _followers.setdefault(key, []).append(lost)
    try:
        yield lost
    finally:
        with _lock:
            _followers[key].remove(lost)
            if not _followers[key]:
                del _followers[key]


def followed() -> list[tuple[int, str]]:
    """The claims (job id, lease token) readers in this process follow now."""
    with _lock:
        return list(_followers)


def signal_unheld(checked: list[tuple[int, str]], held: set[tuple[int, str]]) -> None:
    """Wake the readers following the claims of `checked` that are not in `held`: those claims are gone."""
    with _lock:
        for key in checked:
            if key not in held:
                for lost in _followers.get(key, []):
                    lost.set()


def check_time(job_id: int) -> None:
    """Raise StageTimeout if the stage running `job_id` in this process is past its time limit.

    Does nothing where no stage of `job_id` is watched with a limit (in a PDF process, whose pool kills it).
    """
    with _lock:
        watch = _watches.get(job_id)
    if watch is not None and watch.time_limit is not None and time.monotonic() - watch.began > watch.time_limit:
        raise StageTimeout.after(watch.time_limit)


def signal_lost(job_ids: Iterable[int], checked_since: float) -> None:
    """Wake the stages running `job_ids` in this process: their leases are gone.

    `checked_since` is when (time.monotonic()) the renewal that found them gone
    began: a stage that began watching after it had not claimed its job yet then.
    """
    with _lock:
        for job_id in job_ids:
            watch = _watches.get(job_id)
            if watch is not None and watch.began < checked_since:
                watch.lost.set()
