"""A worker process's shutdown flag, and waiting on stage work that gives way to it.

On SIGTERM the worker stops taking messages and sets the flag
(`actors/middleware/graceful_handback.py`); a stage waiting on its PDF process
(`pdf_pool.run_in_pdf_process`) then stops that work and its item is handed back, so another worker resumes
it at once instead of this one overrunning the PaaS's shutdown grace.
"""

from __future__ import annotations

import threading

_stopping = threading.Event()


class WorkerStopping(Exception):
    """The worker is shutting down: the stage's work was stopped and its item must be handed back."""


def begin_shutdown() -> None:
    """Mark this process as stopping: stage work in progress gives way."""
    _stopping.set()


def is_stopping() -> bool:
    """Whether this process has begun shutting down."""
    return _stopping.is_set()
