"""Stopping what a `docqueue up` started but could not stop itself (it was killed).

Used by the guardian a running `up` leaves behind, by the next `up`, and by
`docqueue down`. Procfile processes go first, gracefully, so a worker can
finish its stage while Postgres still answers; then the servers.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

from docqueue.local.state import RecordedProcess, UpState

#: How long the Procfile processes get to finish, as when `up` stops them itself.
PROCESS_GRACE_SECONDS = 30
SERVER_GRACE_SECONDS = 15


def stop_leftovers(state: UpState, say: Callable[[str], None]) -> list[RecordedProcess]:
    """Stop whatever `state` names that still runs; return what was found running."""
    found = state.leftovers()
    if not found:
        return []
    say(
        f"a `docqueue up` (pid {state.pid}) ended without stopping what it started; "
        f"stopping {', '.join(process.describe() for process in found)}"
    )
    stop_processes([p for p in found if p in state.processes], PROCESS_GRACE_SECONDS, say)
    stop_processes([p for p in found if p in state.servers], SERVER_GRACE_SECONDS, say)
    return found


def stop_processes(processes: list[RecordedProcess], grace: float, say: Callable[[str], None]) -> None:
    """Send each its stop signal, wait up to `grace` seconds for all, then SIGKILL the rest."""
    for process in processes:
        _signal(process, process.stop_signal)
    deadline = time.monotonic() + grace
    while any(process.running() for process in processes) and time.monotonic() < deadline:
        time.sleep(0.2)
    for process in processes:
        if process.running():
            say(f"{process.describe()} did not stop within {grace:.0f} s; killing it")
            _signal(process, signal.SIGKILL)


def _signal(process: RecordedProcess, signum: int) -> None:
    if not process.running():  # never signal a pid that now belongs to someone else
        return
    try:
        if process.group:
            os.killpg(process.pid, signum)
        else:
            os.kill(process.pid, signum)
    except ProcessLookupError:
        pass
