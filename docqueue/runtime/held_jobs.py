"""Which jobs each worker thread holds claims on: what the lease heartbeat renews.

A stage message names its jobs, but a thread that finishes them may go on
with others it was given at admission (`stage_runner`, no message), and a
message's jobs are claimed together and run one after another: the thread
says here which it holds now (those running and those still waiting their
turn), and the heartbeat renews those rather than what its message named.
"""

from __future__ import annotations

import threading

_lock = threading.Lock()
_by_thread: dict[int, list[int]] = {}


def holding(job_ids: list[int]) -> None:
    """This thread now holds the claims of `job_ids` (until `released` or the next `holding`)."""
    with _lock:
        _by_thread[threading.get_ident()] = list(job_ids)


def released() -> None:
    """This thread works on no job any more."""
    with _lock:
        _by_thread.pop(threading.get_ident(), None)


def held() -> list[int]:
    """The jobs this process's threads work on now."""
    with _lock:
        return [job_id for job_ids in _by_thread.values() for job_id in job_ids]
