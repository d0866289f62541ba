"""MemoryGuard: take no new message while memory is above MEMORY_PAUSE_PERCENT.

A worker thread about to start a message waits until memory use drops
below the threshold, so a busy machine finishes what it holds before it
takes more; the message stays unclaimed meanwhile, free for a worker with
room. Stages shrink their write batches too (`docqueue.memory.batch_size`).
"""

from __future__ import annotations

import time

from dramatiq.logging import get_logger
from dramatiq.middleware import Middleware

from docqueue.memory import memory_used_percent, under_pressure


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
            time.sleep(self.poll)
        self.logger.info("Memory back to %.0f%%: resuming.", memory_used_percent())
