"""WorkerRecycle: restart the worker processes after N messages or above an RSS cap.

Dramatiq has no max-tasks-per-child, and its master stops everything when
a worker process exits on its own. What it does have is SIGHUP: the master
forwards it to every worker process (each stops gracefully, handing its
running items back) and then re-executes itself with fresh processes. So a
worker process that has handled WORKER_MAX_MESSAGES messages, or whose
resident memory with its PDF processes exceeds WORKER_MAX_RSS_MB, sends
its master a SIGHUP once. 0 turns either limit off.
"""

from __future__ import annotations

import os
import signal
import threading

from dramatiq.logging import get_logger
from dramatiq.middleware import Middleware

from docqueue.runtime.memory import family_rss_bytes
from docqueue.settings import get_settings


class WorkerRecycle(Middleware):
    """Middleware that asks the dramatiq master to restart the worker processes when this one has done enough.

    Parameters:
      max_messages(int): Messages before a restart; 0 for no limit. Defaults to WORKER_MAX_MESSAGES.
      max_rss_mb(int): Resident megabytes before a restart; 0 for no limit. Defaults to WORKER_MAX_RSS_MB.
    """

    def __init__(self, *, max_messages: int | None = None, max_rss_mb: int | None = None) -> None:
        settings = get_settings()
        self.logger = get_logger(__name__, type(self))
        self.max_messages = settings.worker_max_messages if max_messages is None else max_messages
        self.max_rss_mb = settings.worker_max_rss_mb if max_rss_mb is None else max_rss_mb
        self.processed = 0
        self.requested = False
        self.lock = threading.Lock()

    def after_process_message(self, broker, message, *, result=None, exception=None):
        with self.lock:
            self.processed += 1
            reason = self._reason()
            if reason is None or self.requested:
                return
            self.requested = True
        self.logger.info("Recycling the worker processes: %s.", reason)
        os.kill(os.getppid(), signal.SIGHUP)

    after_skip_message = after_process_message

    def _reason(self) -> str | None:
        if self.max_messages and self.processed >= self.max_messages:
            return f"{self.processed} messages handled (WORKER_MAX_MESSAGES={self.max_messages})"
        if self.max_rss_mb:
            rss_mb = family_rss_bytes() / (1024 * 1024)
            if rss_mb > self.max_rss_mb:
                return f"{rss_mb:.0f} MB resident (WORKER_MAX_RSS_MB={self.max_rss_mb})"
        return None
