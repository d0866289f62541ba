"""A worker process's shutdown flag, and waiting on stage work that gives way to it.

On SIGTERM the worker stops taking messages and sets the flag
(`actors/middleware/graceful_handback.py`); a stage waiting on its PDF process
then stops that work and its item is handed back, so another worker resumes
it at once instead of this one overrunning the PaaS's shutdown grace.
"""

from __future__ import annotations

import concurrent.futures
import threading
from typing import TypeVar

T = TypeVar("T")

_stopping = threading.Event()


class WorkerStopping(Exception):
    """The worker is shutting down: the stage's work was stopped and its item must be handed back."""


def begin_shutdown() -> None:
    """Mark this process as stopping: stage work in progress gives way."""
    _stopping.set()


def wait_unless_stopping(future: concurrent.futures.Future[T], poll_seconds: float = 0.2) -> T:
    """`future.result()`, unless the worker starts stopping first: then cancel it and raise WorkerStopping."""
    while True:
        done, _ = concurrent.futures.wait([future], timeout=poll_seconds)
        if done:
            return future.result()
        if _stopping.is_set():
            future.cancel()  # pebble kills the process running it and starts a fresh one
            raise WorkerStopping("the worker is shutting down")
