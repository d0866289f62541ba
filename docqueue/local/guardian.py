"""The guardian `docqueue up` starts beside itself: it stops what `up` leaves running if `up` is killed.

Embedded Postgres and Redis daemonise, so no signal reaches them when `up`
dies. The guardian runs in its own session (a terminal's Ctrl-C or a
`kill` of `up`'s group does not reach it) and reads a pipe whose only
writers are `up` and the processes it forked. End of file means all of them
are gone: if `up.json` is still there, `up` did not stop cleanly, and the
guardian stops what it names, holding `up.lock` meanwhile so that a new `up`
waits for it (or, had a new `up` taken the lock first and replaced `up.json`,
leaves the work to it).

Run as `python -m docqueue.local.guardian HOME UP_PID`.
"""

from __future__ import annotations

import fcntl
import sys
import time
from pathlib import Path

from docqueue.local.leftovers import stop_leftovers
from docqueue.local.state import LOCK_FILE, read_state, remove_state

LOCK_POLL_SECONDS = 0.1


def main(home: Path, up_pid: int) -> None:
    """Wait for `up` to be gone, then clean up after it if it could not."""
    while sys.stdin.buffer.read(4096):
        pass
    with open(home / LOCK_FILE, "a") as lock:
        if _take_lock(lock, home, up_pid):
            _clean_up_after(home, up_pid)


def _take_lock(lock, home: Path, up_pid: int) -> bool:
    """Take `up.lock`; False if a new `up` has taken it and replaced `up_pid`'s state (it stops the leftovers).

    The lock can still be held a moment after end of file: the last of `up`'s
    processes to exit closes the pipe before the lock's file, so poll.
    """
    while True:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            state = read_state(home)
            if state is None or state.pid != up_pid:
                return False
            time.sleep(LOCK_POLL_SECONDS)


def _clean_up_after(home: Path, up_pid: int) -> None:
    state = read_state(home)
    if state is None or state.pid != up_pid:  # a clean stop, or already another run's state
        return
    if stop_leftovers(state, _say):
        _say("stopped everything it started")
    remove_state(home)


def _say(message: str) -> None:
    print(f"docqueue guardian: {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]))
