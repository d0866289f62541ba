"""Which job each worker thread holds a claim on: what the lease heartbeat renews.

A stage message names its job, but a thread that finishes one may go on
with another job it was given at admission (`stage_runner`, no message):
the thread says so here, and the heartbeat renews whatever each thread
holds now rather than what its message named.
"""

from __future__ import annotations

import threading

_lock = threading.Lock()
_by_thread: dict[int, int] = {}


def holding(job_id: int) -> None:
    """This thread now works on job `job_id` (until `released` or the next `holding`)."""
    with _lock:
        _by_thread[threading.get_ident()] = job_id


def released() -> None:
    """This thread works on no job any more."""
    with _lock:
        _by_thread.pop(threading.get_ident(), None)


def held() -> list[int]:
    """The jobs this process's threads work on now."""
    with _lock:
        return list(_by_thread.values())
