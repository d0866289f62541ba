"""The `clock` process: periodic maintenance on a timer.

Every DISPATCH_INTERVAL_SECONDS it runs the dispatcher, which takes back
jobs from dead workers, re-sends lost messages and admits pending work,
and asks a worker to send callbacks that are due (retries after backoff).
"""

from __future__ import annotations

import logging
import signal
import threading

from docqueue.broker import build_broker
from docqueue.callbacks.deliveries import any_due, schedule_missed
from docqueue.callbacks.sender import request_delivery
from docqueue.db import session_scope
from docqueue.queue.dispatcher import process_document_queue
from docqueue.settings import get_settings

logger = logging.getLogger(__name__)


def run_clock(stop: threading.Event | None = None) -> None:
    """Tick until SIGTERM/SIGINT (or `stop` is set); a failed tick is logged and the next one tries again."""
    stop = stop or threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    build_broker()
    interval = get_settings().dispatch_interval_seconds
    logger.info("clock started: dispatching every %s s", interval)
    while not stop.is_set():
        try:
            with session_scope() as session:
                report = process_document_queue(session)
            if report.recovered or report.failed_stale or report.redispatched or report.admitted:
                logger.info("dispatch: %s", report.as_dict())
            with session_scope() as session:
                schedule_missed(session)
                callbacks_due = any_due(session)
            if callbacks_due:
                request_delivery()
        except Exception:
            logger.exception("dispatch failed; retrying next tick")
        stop.wait(interval)
    logger.info("clock stopped")
