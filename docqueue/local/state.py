"""What a running `docqueue up` records in DOCQUEUE_HOME, for other commands and for the next `up`.

`up` holds `up.lock` (flock) for as long as it runs and keeps `up.json`: its
own pid, the web URL, the embedded servers' URLs, and every process it
started with the moment that process started (so a recycled pid is never
mistaken for ours). `up.json` is removed on a clean stop; when it is still
there and `up` is not, whatever it names that still runs is left over.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil

STATE_FILE = "up.json"
LOCK_FILE = "up.lock"


@dataclass
class RecordedProcess:
    """A process `up` started: how to recognise it and how to stop it gracefully."""

    name: str
    pid: int
    started: float  # psutil's create_time: a pid alone may since belong to someone else
    stop_signal: int = 15  # SIGTERM
    group: bool = False  # signal its whole process group (a Procfile command and its children)

    @classmethod
    def of(cls, name: str, pid: int, **how) -> RecordedProcess:
        """Record the running process `pid`."""
        return cls(name, pid, psutil.Process(pid).create_time(), **how)

    def running(self) -> bool:
        """Whether this very process still runs (not a zombie, not a newer process with its pid)."""
        try:
            process = psutil.Process(self.pid)
            return abs(process.create_time() - self.started) < 0.5 and process.status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False
        except psutil.AccessDenied:  # another user's process now: not ours
            return False

    def describe(self) -> str:
        return f"{self.name} (pid {self.pid})"


@dataclass
class UpState:
    """The contents of `up.json`."""

    pid: int
    started: float
    web_url: str
    database_url: str = ""  # embedded servers only: real servers' URLs stay in the environment
    redis_url: str = ""
    servers: list[RecordedProcess] = field(default_factory=list)
    processes: list[RecordedProcess] = field(default_factory=list)

    def up_process(self) -> RecordedProcess:
        return RecordedProcess("docqueue up", self.pid, self.started)

    def embedded_servers_running(self) -> bool:
        return bool(self.database_url and self.servers) and all(server.running() for server in self.servers)

    def leftovers(self) -> list[RecordedProcess]:
        """What this run started that still runs: Procfile processes first, then the servers they need."""
        return [process for process in [*self.processes, *self.servers] if process.running()]


def write_state(home: Path, state: UpState) -> None:
    """Replace `up.json` atomically: a reader never sees half a file."""
    temporary = home / f".{STATE_FILE}.{os.getpid()}"
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        json.dump(asdict(state), file, indent=2)
    os.replace(temporary, home / STATE_FILE)


def read_state(home: Path) -> UpState | None:
    """The recorded state, or None when there is none (or it cannot be read)."""
    try:
        raw = json.loads((home / STATE_FILE).read_text())
        raw["servers"] = [RecordedProcess(**server) for server in raw.get("servers", [])]
        raw["processes"] = [RecordedProcess(**process) for process in raw.get("processes", [])]
        return UpState(**raw)
    except (OSError, ValueError, TypeError):
        return None


def remove_state(home: Path) -> None:
    (home / STATE_FILE).unlink(missing_ok=True)


def new_state(web_url: str) -> UpState:
    """The state of this process, as `up` records it at start."""
    me = RecordedProcess.of("docqueue up", os.getpid())
    return UpState(pid=me.pid, started=me.started, web_url=web_url)


def lock_is_held(home: Path) -> bool:
    """Whether some process (a running `up`, or processes forked from one) holds `up.lock`."""
    try:
        lock = open(home / LOCK_FILE)
    except FileNotFoundError:
        return False
    with lock:
        try:
            # Shared, and released at once: it conflicts only with `up`'s exclusive lock.
            fcntl.flock(lock, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(lock, fcntl.LOCK_UN)
        return False


def wait_for_unlock(home: Path, timeout: float) -> bool:
    """Wait until nothing holds `up.lock`; False if it is still held after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while lock_is_held(home):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True
