"""The `clock` process: periodic maintenance, and the dispatcher on request.

It runs the dispatcher, which takes back jobs from dead workers, re-sends
lost messages and admits pending work, whenever a dispatcher run asks it to
(a Postgres notification: see `queue/dispatch_requests.py`) and at least
every DISPATCH_INTERVAL_SECONDS. It LISTENs on a connection of its own,
to DATABASE_DIRECT_URL when set; behind a transaction pooler without one
it has only its tick, and its first log line says which. Each tick also
asks a worker to send the result callbacks that are due, drops
Idempotency-Key answers past their 24 hours, checks that some worker is
alive while work waits (a Sentry event when none has been heard from for
NO_WORKER_ALERT_SECONDS) and marks `abandoned` the ingest runs whose
process stopped beating. Every
CLEANUP_INTERVAL_SECONDS (daily) it deletes completed queue rows older than
COMPLETED_RETENTION_DAYS, in small batches.
"""

from __future__ import annotations

import logging
import signal
import threading
import time

import sentry_sdk
from sqlalchemy import NullPool, create_engine

from docqueue.broker import build_broker
from docqueue.callbacks.deliveries import any_due, schedule_missed
from docqueue.callbacks.sender import request_delivery
from docqueue.connections import connect_args, listen_url, process_role
from docqueue.db import session_scope
from docqueue.dispatch.dispatcher import DispatchReport, process_document_queue
from docqueue.ingest.runs import mark_abandoned
from docqueue.outages import OutageLog
from docqueue.queue import dispatch_requests
from docqueue.queue.cleanup import delete_old_completed
from docqueue.queue.heartbeats import liveness
from docqueue.queue.idempotency import prune_expired_keys
from docqueue.settings import get_settings
from docqueue.wording import counted

logger = logging.getLogger(__name__)


class _Listener:
    """A LISTEN connection for dispatch notifications, reopened after an error (a Postgres restart).

    A connection of its own (not from the clock's pool), to `url`: a direct
    one, as LISTEN does not work through a transaction pooler.
    """

    def __init__(self, url: str, outages: OutageLog) -> None:
        self.engine = create_engine(url, poolclass=NullPool, connect_args=connect_args(process_role(), direct=True))
        self.connection = None
        self.outages = outages

    def wait(self, timeout: float, stop: threading.Event) -> None:
        """Return when notified, when `stop` is set, or after `timeout` seconds."""
        try:
            if self.connection is None:
                self.connection = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
                dispatch_requests.listen(self.connection)
            deadline = time.monotonic() + timeout
            # In slices, so a SIGTERM stops the clock within a second.
            while not stop.is_set() and (left := deadline - time.monotonic()) > 0:
                if dispatch_requests.wait_for_notification(self.connection, min(left, 1.0)):
                    return
        except Exception as error:
            if not self.outages.note(error):
                logger.warning("could not listen for dispatch requests; falling back to the %s s tick", timeout)
            self.close()
            stop.wait(timeout)

    def close(self) -> None:
        if self.connection is not None:
            try:
                self.connection.close()
            except Exception:
                pass  # the connection is already broken: nothing to close
            self.connection = None


class _TickOnly:
    """No LISTEN connection (behind a transaction pooler with no DATABASE_DIRECT_URL): wait for the tick."""

    def wait(self, timeout: float, stop: threading.Event) -> None:
        stop.wait(timeout)

    def close(self) -> None:
        pass


def _tick(outages: OutageLog) -> DispatchReport | None:
    try:
        with session_scope() as session:
            report = process_document_queue(session)
    except Exception as error:
        if not outages.note(error):
            logger.exception("dispatch failed; retrying next tick")
        return None
    if report.recovered or report.failed_stale or report.redispatched or report.resent_lost or report.admitted:
        logger.info("dispatch: %s", report.as_dict())
    return report


def _guarded(what: str, step, outages: OutageLog) -> bool:
    """Run one maintenance step; a failure is logged (an unreachable server once per outage) and the next
    tick tries again. True if it ran."""
    try:
        step()
    except Exception as error:
        if not outages.note(error):
            logger.exception("%s failed; retrying next tick", what)
        return False
    return True


def _prune_idempotency_keys() -> None:
    with session_scope() as session:
        prune_expired_keys(session, get_settings().queue_batch_size)


def _mark_abandoned_ingests() -> None:
    with session_scope() as session:
        marked = mark_abandoned(session)
    if marked:
        logger.warning("marked %s abandoned: their process stopped beating", counted(marked, "ingest run"))


def _send_due_callbacks() -> None:
    with session_scope() as session:
        schedule_missed(session)
        due = any_due(session)
    if due:
        request_delivery()


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


def _cleanup() -> None:
    deleted = delete_old_completed(session_scope)
    logger.info("cleanup: deleted %s completed queue rows past their retention", deleted)


def run_clock(stop: threading.Event | None = None) -> None:
    """Dispatch until SIGTERM/SIGINT (or `stop` is set); a failed run is logged and the next one tries again."""
    stop = stop or threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    build_broker()
    settings = get_settings()
    interval = settings.dispatch_interval_seconds
    outages = OutageLog(logger, f"the clock retries every {interval} s")
    url = listen_url(settings)
    listener = _Listener(url, outages) if url else _TickOnly()
    alarm = _NoWorkerAlarm()
    next_cleanup = time.monotonic()
    if url is None:
        logger.info(
            "clock started: dispatching every %s s (DATABASE_POOLER=transaction and no DATABASE_DIRECT_URL to LISTEN on)",
            interval,
        )
    else:
        via = "DATABASE_DIRECT_URL" if url == settings.database_direct_url else "DATABASE_URL"
        logger.info("clock started: dispatching on request (LISTEN on %s) and every %s s", via, interval)
    while not stop.is_set():
        report = _tick(outages)
        _guarded("looking for due callbacks", _send_due_callbacks, outages)
        _guarded("dropping expired idempotency keys", _prune_idempotency_keys, outages)
        _guarded("the no-worker check", alarm.check, outages)
        _guarded("marking abandoned ingest runs", _mark_abandoned_ingests, outages)
        if time.monotonic() >= next_cleanup and _guarded("cleanup", _cleanup, outages):
            next_cleanup = time.monotonic() + settings.cleanup_interval_seconds
        outages.round_done()
        if report is not None and report.more_requested:
            continue  # asked again while it ran: run again now
        listener.wait(interval, stop)
    listener.close()
    logger.info("clock stopped")
