"""Who this worker process is, on the leases and ranges it holds."""

from __future__ import annotations

import os
import threading
import uuid

from docqueue.settings import get_settings

_worker_ids: dict[int, str] = {}
_worker_ids_lock = threading.Lock()


def current_worker_id() -> str:
    """This process's identity on the leases it holds (new after a fork).

    Made under a lock: the heartbeat thread and a stage thread asking at once
    at boot must get the same id, or the heartbeat renews none of that
    stage's lease (`functools.cache` does not lock, so each got its own id).
    The machine part is MACHINE_NAME (the host name by default), so the
    dashboard tells the machines of a fleet apart.
    """
    pid = os.getpid()
    with _worker_ids_lock:
        if pid not in _worker_ids:
            _worker_ids[pid] = f"{get_settings().machine_name}:{pid}:{uuid.uuid4().hex[:8]}"
        return _worker_ids[pid]
