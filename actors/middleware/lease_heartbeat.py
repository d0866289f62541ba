"""LeaseHeartbeat: keep the Postgres leases of running stages alive, and say the worker is.

A claim's lease lasts LEASE_SECONDS. While a message of an actor with
`heartbeat_lease=True` runs, one thread per worker process extends the
leases of all of them in a single UPDATE every third of that. When the
process dies the heartbeats stop, the leases lapse, and the dispatcher
takes the jobs back. A lease that could not be renewed was taken away
(an operator cancelled the job, or recovery gave it to another attempt):
its stage is told to stop (`docqueue.lease_watch`). Each beat, busy or
idle, also records the process as alive for the dashboard
(`docqueue.queue.workers`).
"""

from __future__ import annotations

import threading
import time

from dramatiq.logging import get_logger
from dramatiq.middleware import Middleware

from docqueue import lease_watch
from docqueue.db import session_scope
from docqueue.queue import DocumentQueueService
from docqueue.queue.workers import forget_worker, heartbeat_interval, record_worker_beat
from docqueue.stage_runner import current_worker_id


class LeaseHeartbeat(Middleware):
    """Middleware that extends the leases of the jobs this process is running.

    Parameters:
      interval(float): Seconds between heartbeats. Defaults to a third of LEASE_SECONDS, at most 5 s,
        so a cancelled stage stops within seconds.
    """

    def __init__(self, *, interval: float | None = None) -> None:
        self.logger = get_logger(__name__, type(self))
        self.interval = interval or heartbeat_interval()
        self.running_jobs: dict[str, int] = {}
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.thread: threading.Thread | None = None

    @property
    def actor_options(self):
        return {"heartbeat_lease"}

    def after_worker_boot(self, broker, worker):
        self.stopped.clear()
        self.thread = threading.Thread(target=self._beat, name="lease-heartbeat", daemon=True)
        self.thread.start()

    def before_worker_shutdown(self, broker, worker):
        self.stopped.set()
        try:
            with session_scope() as session:
                forget_worker(session, current_worker_id())
        except Exception:
            self.logger.exception("Could not remove this worker from the live list.")

    def before_process_message(self, broker, message):
        if broker.get_actor(message.actor_name).options.get("heartbeat_lease"):
            with self.lock:
                self.running_jobs[message.message_id] = message.args[0]

    def after_process_message(self, broker, message, *, result=None, exception=None):
        with self.lock:
            self.running_jobs.pop(message.message_id, None)

    after_skip_message = after_process_message

    def _beat(self):
        # Beat at once on boot, so the dashboard lists a new worker without waiting an interval.
        while not self.stopped.is_set():
            with self.lock:
                job_ids = list(self.running_jobs.values())
            try:
                renewal_started = time.monotonic()
                with session_scope() as session:
                    renewed = DocumentQueueService(session).extend_leases(job_ids, current_worker_id())
                    record_worker_beat(session, current_worker_id(), len(job_ids))
                lease_watch.signal_lost(set(job_ids) - renewed, renewal_started)
            except Exception:
                # A missed beat is not fatal: the lease is at least three beats long.
                self.logger.exception("Could not extend leases for jobs %s.", job_ids)
            self.stopped.wait(self.interval)
