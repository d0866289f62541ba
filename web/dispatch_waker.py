"""The web's dispatcher nudges, run after the answer and one at a time per process.

An upload used to run the dispatcher (admission: an advisory lock, a
statement, a commit, a Redis send) inside its request, before its 202:
about a quarter of an upload's statements and commits, and under load
concurrent nudges mostly found the lock taken and left requests for the
clock. Here a request only flags that it committed work; one background
thread (a greenlet under gunicorn's gevent workers) runs the dispatcher
whenever the flag is up, so every commit made while a run is under way
is covered by the next run, and a burst of uploads costs a run or two.

What a run misses (the process exits first, the database is down) the
clock's next tick admits, as it did when a nudge in the request failed.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Callable

from flask import Flask, current_app
from sqlalchemy.orm import Session

from docqueue.dispatch.dispatcher import nudge_dispatcher
from web.extensions import db

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


def install_dispatch_waker(app: Flask) -> None:
    """Give `app` its waker; views then pass `wake_dispatcher` to the commands they run."""

    def run() -> None:
        with app.app_context():
            nudge_dispatcher(db.session)

    app.extensions["dispatch_waker"] = DispatchWaker(run)


def wake_dispatcher(session: Session) -> None:
    """A command's `wake`: admission runs soon after this request's commit, off the request.

    `session` (the request's) is not used: the run has a session of its own.
    """
    current_app.extensions["dispatch_waker"].wake()
