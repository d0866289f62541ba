"""MemoryGuard: take no new message while memory is above MEMORY_PAUSE_PERCENT.

A worker thread about to start a message waits until memory use drops
below the threshold, so a busy machine finishes what it holds before it
takes more. Its job stays unclaimed in Postgres meanwhile, but Redis has
already handed the message to this worker: no other worker gets it, and
the clock resends only messages Redis no longer holds. So a worker that
starts stopping while it waits skips the message (acknowledged, not run):
the job, still queued, gets a fresh message from the clock
(LOST_MESSAGE_AFTER_SECONDS), for any worker, instead of waiting in this
one's Redis acknowledgements after it is gone. Stages shrink their write
batches too (`docqueue.runtime.memory.batch_size`).
"""

from __future__ import annotations

import time

from dramatiq.logging import get_logger
from dramatiq.middleware import Middleware, SkipMessage

from docqueue.runtime.memory import memory_used_percent, under_pressure
from docqueue.runtime.worker_shutdown import is_stopping


class MemoryGuard(Middleware):
    """Middleware that pauses new messages while memory is short.

    Parameters:
      poll(float): Seconds between checks while paused. Defaults to 1.
    """

    def __init__(self, *, poll: float = 1.0) -> None:
        self.logger = get_logger(__name__, type(self))
        self.poll = poll

    def before_process_message(self, broker, message):
        if not under_pressure():
            return
        self.logger.warning("Memory at %.0f%%: pausing before message %s.", memory_used_percent(), message.message_id)
        while under_pressure():
            if is_stopping():
                self.logger.info("Worker stopping: skipping message %s, unclaimed, for the clock to resend.", message)
                raise SkipMessage
            time.sleep(self.poll)
        self.logger.info("Memory back to %.0f%%: resuming.", memory_used_percent())
