"""A running ingest's heartbeat: its run record's `updated_at`, renewed while the process lives.

A batch of large files can take minutes between commits, so the beat comes
from a thread of its own, on its own connection, every
HEARTBEAT_INTERVAL_SECONDS. A run killed outright stops beating, and once
its beat is older than HEARTBEAT_TIMEOUT_SECONDS the clock marks it
`abandoned` (`runs.mark_abandoned`).
"""

from __future__ import annotations

import logging
import threading
from types import TracebackType

from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from docqueue.settings import get_settings
from docqueue.statuses import IngestRunStatus

logger = logging.getLogger(__name__)

_BEAT = f"UPDATE ingest_runs SET updated_at = now() WHERE id = :run_id AND status = '{IngestRunStatus.RUNNING}'"


class RunHeartbeat:
    """`with RunHeartbeat(engine, run_id):` renews the run's `updated_at` until the block ends."""

    def __init__(self, engine: Engine, run_id: int) -> None:
        self.engine = engine
        self.run_id = run_id
        self.interval = get_settings().heartbeat_interval_seconds
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._beat, name=f"ingest-heartbeat-{run_id}", daemon=True)

    def _beat(self) -> None:
        while not self.stopped.wait(self.interval):
            try:
                with self.engine.begin() as connection:
                    connection.execute(text(_BEAT), {"run_id": self.run_id})
            except SQLAlchemyError:
                # A database blip must not stop the import: the next beat tries again.
                logger.warning("ingest run %s: heartbeat failed", self.run_id, exc_info=True)

    def __enter__(self) -> RunHeartbeat:
        self.thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        # Not joined: a beat in flight may wait on the row lock of a batch an interrupt left open until the
        # caller drops that connection, and once the run is finished a late beat matches nothing.
        self.stopped.set()
