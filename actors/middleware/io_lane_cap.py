"""IoLaneCap: keep slow outside-service calls from taking every worker thread.

A worker process runs WORKER_THREADS threads that take messages from both
lanes' queues. IO-lane stages (embeddings, chat) wait on outside services
in their thread; if they took every thread, PDF work would wait behind
them. This middleware lets at most `limit` messages of actors with
`io_lane=True` run at once in a process. A further one is put back on its
queue with a short delay before it claims anything, and skipped here: the
claim is fenced in Postgres, so a message that runs later, twice, or never
(the dispatcher re-sends lost ones) does no harm.
"""

from __future__ import annotations

import threading

from dramatiq.logging import get_logger
from dramatiq.middleware import Middleware, SkipMessage

from docqueue.settings import get_settings


class IoLaneCap(Middleware):
    """Middleware that caps the IO-lane messages running at once in each worker process.

    Parameters:
      limit(int): IO-lane messages one process runs at once. Defaults to IO_LANE_THREADS.
      requeue_delay(int): Milliseconds before a message over the cap is offered again.
        Defaults to IO_LANE_REQUEUE_DELAY_MS.
    """

    def __init__(self, *, limit: int | None = None, requeue_delay: int | None = None) -> None:
        settings = get_settings()
        self.logger = get_logger(__name__, type(self))
        self.limit = limit or settings.io_lane_threads
        self.requeue_delay = requeue_delay or settings.io_lane_requeue_delay_ms
        self.lock = threading.Lock()
        self.running: set[str] = set()

    @property
    def actor_options(self):
        return {"io_lane"}

    def before_process_message(self, broker, message):
        if not broker.get_actor(message.actor_name).options.get("io_lane"):
            return
        with self.lock:
            if len(self.running) < self.limit:
                self.running.add(message.message_id)
                return
        self.logger.debug("IO lane full (%d running); offering message %s again later.", self.limit, message)
        broker.enqueue(message.copy(), delay=self.requeue_delay)
        raise SkipMessage("IO lane full")

    def after_process_message(self, broker, message, *, result=None, exception=None):
        with self.lock:
            self.running.discard(message.message_id)

    after_skip_message = after_process_message
