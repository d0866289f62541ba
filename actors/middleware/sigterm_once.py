"""SigtermOnce: survive the PaaS's SIGTERM arriving twice.

On shutdown a PaaS signals every process in the dyno, and the dramatiq
master forwards its own SIGTERM to each worker process as well. Dramatiq's
worker process treats a second SIGTERM as "kill now" and exits without
finishing its messages. This middleware lets the first SIGTERM start the
graceful stop and ignores repeats that arrive within `window` seconds; a
later one (a deliberate second Ctrl-C) still kills at once.
"""

from __future__ import annotations

import signal
import time

from dramatiq.logging import get_logger
from dramatiq.middleware import Middleware


class SigtermOnce(Middleware):
    """Middleware that ignores duplicate SIGTERMs in worker processes.

    Parameters:
      window(float): Seconds after the first SIGTERM during which repeats
        are ignored. Defaults to 5.
    """

    def __init__(self, *, window: float = 5.0) -> None:
        self.logger = get_logger(__name__, type(self))
        self.window = window

    def after_process_boot(self, broker):
        # Dramatiq installs its own handler before emitting process_boot; wrap it.
        dramatiq_handler = signal.getsignal(signal.SIGTERM)
        if not callable(dramatiq_handler):
            return
        first_seen: list[float] = []

        def handle_sigterm(signum, frame):
            now = time.monotonic()
            if first_seen and now - first_seen[0] < self.window:
                self.logger.info("Ignoring repeated SIGTERM: already stopping gracefully.")
                return
            first_seen[:] = [now]
            dramatiq_handler(signum, frame)

        signal.signal(signal.SIGTERM, handle_sigterm)
