"""Dispatcher runs after committed work, off the caller's path and coalesced: one run covers every wake made
before it started.

Admission after each upload or finished job (an advisory lock, two statements over the in-flight
jobs, a commit, a Redis send: ~10 ms and 6 statements in 2 transactions, measured with cProfile over
the corpus) was a fifth of a small document's cost in the worker, and of an upload's in the web.
A caller only flags that it committed work; one background thread per process runs the dispatcher
whenever the flag is up, so every commit made while a run is under way is covered by the next run,
and a burst of completions or uploads costs a run or two. The web (`web/dispatch_waker.py`) and the
worker (`worker_waker`) each keep one.

What a run misses (the process exits first, the database is down) the clock's next tick admits, as it
did when a nudge in the caller failed.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Callable

from docqueue.db import session_scope
from docqueue.dispatch.dispatcher import nudge_dispatcher

logger = logging.getLogger(__name__)


class DispatchWaker:
    """Runs `run` in a background thread after each `wake()`, once for all wakes since its last start."""

    def __init__(self, run: Callable[[], None]) -> None:
        self.run = run
        self.condition = threading.Condition()
        self.asked = 0  # wakes so far
        self.covered = 0  # wakes made before the start of a run that has finished
        self.started_in: int | None = None  # the pid whose thread runs: a forked child starts its own

    def wake(self) -> None:
        """Ask for a run that starts after this call; returns at once."""
        with self.condition:
            self.asked += 1
            self.condition.notify_all()  # the loop, not only a `wait_idle` caller
            if self.started_in != os.getpid():
                threading.Thread(target=self._loop, name="dispatch-waker", daemon=True).start()
                self.started_in = os.getpid()

    def wait_idle(self, timeout: float) -> bool:
        """Wait up to `timeout` s for the runs asked for so far to finish; whether they did.

        For callers that must see the admission an upload asked for (tests).
        """
        with self.condition:
            return self.condition.wait_for(lambda: self.covered >= self.asked, timeout)

    def _loop(self) -> None:
        while True:
            with self.condition:
                self.condition.wait_for(lambda: self.asked > self.covered)
                target = self.asked  # a wake from now on asks for the next run
            try:
                self.run()
            except Exception:
                logger.exception("dispatcher wake-up failed; the clock will dispatch instead")
            with self.condition:
                self.covered = target
                self.condition.notify_all()


def _nudge_in_own_session() -> None:
    with session_scope() as session:
        nudge_dispatcher(session)


#: The worker process's waker: a finished job wakes it rather than running admission in its own thread.
worker_waker = DispatchWaker(_nudge_in_own_session)
