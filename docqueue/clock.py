"""The `clock` process: periodic maintenance on a timer.

Every DISPATCH_INTERVAL_SECONDS it runs the dispatcher, which takes back
jobs from dead workers, re-sends lost messages and admits pending work, and
checks that some worker is alive while work waits (a Sentry event when none
has been heard from for NO_WORKER_ALERT_SECONDS). Every
CLEANUP_INTERVAL_SECONDS (daily) it deletes completed queue rows older
than COMPLETED_RETENTION_DAYS, in small batches.
"""

from __future__ import annotations

import logging
import signal
import threading
import time

import sentry_sdk

from docqueue.broker import build_broker
from docqueue.db import session_scope
from docqueue.queue.cleanup import delete_old_completed
from docqueue.queue.dispatcher import process_document_queue
from docqueue.queue.heartbeats import liveness
from docqueue.settings import get_settings

logger = logging.getLogger(__name__)


class _NoWorkerAlarm:
    """Reports work left with no live worker once per outage, not on every tick."""

    def __init__(self) -> None:
        self.raised = False
        self.started = time.monotonic()

    def check(self) -> None:
        with session_scope() as session:
            state = liveness(session)
        unattended = state.unattended(watched_for=time.monotonic() - self.started)
        if unattended and not self.raised:
            silence = (
                "no worker has ever sent a heartbeat"
                if state.seconds_since_last_worker is None
                else (f"no worker heartbeat for {state.seconds_since_last_worker:.0f} s")
            )
            message = f"{state.waiting_jobs} queue items wait and {silence}"
            logger.error("%s: start a worker process", message)
            sentry_sdk.capture_message(f"Pending work with no live worker: {message}", level="error")
        self.raised = unattended


def _tick(alarm: _NoWorkerAlarm) -> None:
    with session_scope() as session:
        report = process_document_queue(session)
    if report.recovered or report.failed_stale or report.redispatched or report.admitted:
        logger.info("dispatch: %s", report.as_dict())
    alarm.check()


def _cleanup() -> None:
    deleted = delete_old_completed(session_scope)
    logger.info("cleanup: deleted %s completed queue rows past their retention", deleted)


def run_clock(stop: threading.Event | None = None) -> None:
    """Tick until SIGTERM/SIGINT (or `stop` is set); a failed tick is logged and the next one tries again."""
    stop = stop or threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    build_broker()
    settings = get_settings()
    interval = settings.dispatch_interval_seconds
    logger.info("clock started: dispatching every %s s", interval)
    alarm = _NoWorkerAlarm()
    next_cleanup = time.monotonic()
    while not stop.is_set():
        try:
            _tick(alarm)
        except Exception:
            logger.exception("dispatch failed; retrying next tick")
        if time.monotonic() >= next_cleanup:
            try:
                _cleanup()
                next_cleanup = time.monotonic() + settings.cleanup_interval_seconds
            except Exception:
                logger.exception("cleanup failed; retrying next tick")
        stop.wait(interval)
    logger.info("clock stopped")
