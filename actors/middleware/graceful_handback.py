"""GracefulHandback: on shutdown, hand running stages back instead of finishing them.

A PaaS gives a stopping process about 30 seconds. Dramatiq stops taking
messages at once and waits for running ones; with this middleware a stage
waiting on its PDF process stops that work and hands its item back
(`queued` again at the same stage, its attempt not counted, a fresh
message sent), so a worker of the new release resumes it at once rather
than this one overrunning the grace period and being killed mid-write.
"""

from __future__ import annotations

from dramatiq.logging import get_logger
from dramatiq.middleware import Middleware

from docqueue.runtime.worker_shutdown import begin_shutdown


class GracefulHandback(Middleware):
    """Middleware that makes running stages hand their items back when the worker starts stopping."""

    def __init__(self) -> None:
        self.logger = get_logger(__name__, type(self))

    def before_worker_shutdown(self, broker, worker):
        self.logger.info("Worker stopping: running stages hand their items back.")
        begin_shutdown()
