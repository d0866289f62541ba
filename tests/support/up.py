"""Running `docqueue up` in a test: the process, the settings it must not inherit, what it started."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest
import requests

DOCQUEUE = Path(sys.executable).parent / "docqueue"


# Settings other fixtures may have put in os.environ; `up` must find its own.
FOREIGN_SETTINGS = (
    "DATABASE_URL",
    "REDIS_URL",
    "REDIS_NAMESPACE",
    "SECRET_KEY",
    "DOCQUEUE_HOME",
    "HEARTBEAT_INTERVAL_SECONDS",
    "HEARTBEAT_TIMEOUT_SECONDS",
    "DISPATCH_INTERVAL_SECONDS",
    "REDISPATCH_AFTER_SECONDS",
    "RETRY_BACKOFF_SECONDS",
)


class UpProcess:
    """`docqueue up` run in `cwd`, its output collected line by line."""

    def __init__(self, cwd: Path, port: int) -> None:
        self.cwd = cwd
        self.port = port
        self.url = f"http://127.0.0.1:{port}/"
        env = {k: v for k, v in os.environ.items() if k not in FOREIGN_SETTINGS}
        # Inherited by everything `up` starts, even the daemonised servers: how we find leftovers.
        env[MARKER] = str(cwd)
        env["PDF_WORKER_PROCESSES"] = "2"
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self.process = subprocess.Popen(
            [str(DOCQUEUE), "up", "--port", str(port)],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, pattern: str, timeout: float) -> re.Match:
        """The first output line matching `pattern`; fail if it does not come in time."""
        regex = re.compile(pattern)
        for line in self.lines:
            if match := regex.search(line):
                return match
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=0.5)
            except queue.Empty:
                continue
            if line is None:
                pytest.fail(f"docqueue up exited ({self.process.wait()}) before printing {pattern!r}:\n{self.output()}")
            self.lines.append(line)
            if match := regex.search(line):
                return match
        pytest.fail(f"timed out after {timeout} s waiting for {pattern!r}:\n{self.output()}")

    def interrupt(self, timeout: float = 60) -> int:
        """Ctrl-C, as a terminal sends it (to the whole foreground process group); return the exit code."""
        os.killpg(self.process.pid, signal.SIGINT)
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"docqueue up did not stop within {timeout} s of SIGINT:\n{self.output()}")
        self.wait_for_eof()
        return code

    def wait_for_eof(self) -> None:
        while (line := self._queue.get(timeout=10)) is not None:
            self.lines.append(line)

    def kill(self) -> None:
        """Last-resort cleanup: SIGKILL the group and anything it started elsewhere."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        for leftover in started_processes(self.cwd):
            leftover.kill()


def started_processes(cwd: Path) -> list[psutil.Process]:
    """Live processes started by a `docqueue up` run in `cwd`: Postgres and Redis daemonise into
    their own sessions, so find them by the marker in their environment or by their data directory."""
    found = []
    for process in psutil.process_iter():
        try:
            if process.pid == os.getpid() or process.status() == psutil.STATUS_ZOMBIE:
                continue
            mentions = str(cwd) in " ".join(process.cmdline()) or process.cwd().startswith(str(cwd))
            if mentions or process.environ().get(MARKER) == str(cwd):
                found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


MARKER = "DOCQUEUE_UP_TEST_MARKER"


def upload(base_url: str, token: str, path: Path) -> int:
    with path.open("rb") as file:
        response = requests.post(
            f"{base_url}api/documents",
            files={"file": (path.name, file, "application/pdf")},
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "pending"
    return response.json()["id"]
