"""The web's dispatcher nudges, run after the answer and one at a time per process (`DispatchWaker`).

An upload used to run the dispatcher inside its request, before its 202:
about a quarter of an upload's statements and commits, and under load
concurrent nudges mostly found the lock taken and left requests for the
clock. The waker's thread is a greenlet under gunicorn's gevent workers.
"""

from __future__ import annotations

from flask import Flask, current_app
from sqlalchemy.orm import Session

from docqueue.dispatch.dispatcher import nudge_dispatcher
from docqueue.dispatch.waker import DispatchWaker
from web.extensions import db


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
