"""Keep Dramatiq's "Message ... was skipped." warning out of healthy logs.

Dramatiq's worker thread logs that line at WARNING for every message a
middleware skips. Here a skip is routine: the IO lane was full and the
message was offered again (`IoLaneCap`, ~24 lines in one healthy import),
or a stopping worker left a message for the clock to resend
(`MemoryGuard`). Each middleware already says why at the level it
deserves, so the generic line is dropped; nothing healthy logs a warning.
"""

from __future__ import annotations

import logging

#: The logger Dramatiq's worker threads log through (`dramatiq.worker.WorkerThread`).
WORKER_THREAD_LOGGER = "dramatiq.worker.WorkerThread"
_SKIPPED = "Message %s was skipped."


class DropSkippedMessageWarnings(logging.Filter):
    """Drops the worker thread's "was skipped" record; every other record passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.msg != _SKIPPED


def quiet_skipped_messages() -> None:
    """Install the filter on the worker threads' logger (once per process: a second call changes nothing)."""
    logger = logging.getLogger(WORKER_THREAD_LOGGER)
    if not any(isinstance(existing, DropSkippedMessageWarnings) for existing in logger.filters):
        logger.addFilter(DropSkippedMessageWarnings())
