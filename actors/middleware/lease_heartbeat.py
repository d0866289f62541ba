"""LeaseHeartbeat: keep the Postgres claims of running stages alive, and say the worker is alive.

Every HEARTBEAT_INTERVAL_SECONDS one thread per worker process sends one
statement (`docqueue.queue.heartbeats.beat`) that renews every item of an
actor with `heartbeat_lease=True` this process is running, and records the
process in `worker_heartbeats`. When the process dies or freezes the beats
stop; after HEARTBEAT_TIMEOUT_SECONDS the clock takes its items back, and
their fencing tokens keep it from publishing if it ever comes back.

A claim that could not be renewed was taken away (an operator cancelled the
job, or recovery gave it to another attempt): its stage is told to stop
(`docqueue.runtime.lease_watch`). So that a cancel takes effect within seconds, the
thread also asks which claims still hold every LEASE_CHECK_SECONDS between
beats, with a read that renews nothing; in the same transaction it asks whether
the claims this process's OCR range readers follow still hold
(`lease_watch.following`).
"""

from __future__ import annotations

import threading
import time

from dramatiq.logging import get_logger
from dramatiq.middleware import Middleware

from docqueue.db import session_scope
from docqueue.dispatch.messages import message_job_ids
from docqueue.queue.heartbeats import beat, claims_holding, forget_worker, held_claims
from docqueue.runtime import held_jobs, lease_watch
from docqueue.runtime.worker_identity import current_worker_id
from docqueue.settings import get_settings

#: Most seconds between two looks at whether this process's claims still hold.
LEASE_CHECK_SECONDS = 5.0


class LeaseHeartbeat(Middleware):
    """Middleware that renews the claims of the jobs this process is running.

    Parameters:
      interval(float): Seconds between heartbeats. Defaults to HEARTBEAT_INTERVAL_SECONDS.
    """

    def __init__(self, *, interval: float | None = None) -> None:
        self.logger = get_logger(__name__, type(self))
        self.interval = interval or get_settings().heartbeat_interval_seconds
        self.stopped = threading.Event()
        self.thread: threading.Thread | None = None

    @property
    def actor_options(self):
        return {"heartbeat_lease"}

    def after_worker_boot(self, broker, worker):
        self.stopped.clear()
        self.thread = threading.Thread(target=self._beat_until_stopped, name="lease-heartbeat", daemon=True)
        self.thread.start()

    def after_worker_shutdown(self, broker, worker):
        # Beats go on until every running stage has published or been handed back.
        self.stopped.set()
        try:
            with session_scope() as session:
                forget_worker(session, current_worker_id())
        except Exception:
            self.logger.warning("Could not remove this worker's presence record.", exc_info=True)

    def before_process_message(self, broker, message):
        if broker.get_actor(message.actor_name).options.get("heartbeat_lease"):
            # The thread may go on with other jobs after this message's (`held_jobs`): it says so there.
            held_jobs.holding(message_job_ids(message.args[0]))

    def after_process_message(self, broker, message, *, result=None, exception=None):
        held_jobs.released()

    after_skip_message = after_process_message

    def _beat_until_stopped(self):
        # Beat at once on boot, so the dashboard lists a new worker without waiting an interval.
        next_beat = time.monotonic()
        while True:
            if time.monotonic() >= next_beat:
                self._check(renew=True)
                next_beat = time.monotonic() + self.interval
            else:
                self._check(renew=False)
            if self.stopped.wait(min(LEASE_CHECK_SECONDS, self.interval, max(next_beat - time.monotonic(), 0.1))):
                return

    def _check(self, *, renew: bool):
        job_ids = held_jobs.held()
        followed = lease_watch.followed()
        if not job_ids and not followed and not renew:
            return
        started = time.monotonic()
        try:
            with session_scope() as session:
                if renew:
                    held = beat(session, current_worker_id(), job_ids)
                else:
                    held = held_claims(session, current_worker_id(), job_ids)
                followed_held = claims_holding(session, followed)
        except Exception:
            # A missed beat is not fatal: the timeout spans several beats.
            self.logger.exception("Could not send the heartbeat for jobs %s.", job_ids)
            return
        lease_watch.signal_lost(set(job_ids) - held, started)
        lease_watch.signal_unheld(followed, followed_held)
