"""Real processes for the tests: free ports, Procfile processes in their own groups, waiting for them, the corpus."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
import requests

from docqueue.local.procfile import REPO_ROOT as REPO
from docqueue.local.procfile import procfile_commands, with_local_scripts

CORPUS = REPO.parent / "shared" / "corpus"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ManagedProcess:
    """A Procfile process started with bash, as a PaaS would, in its own process group."""

    def __init__(self, name: str, env: dict, log_dir: Path, extra_env: dict | None = None) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}-{time.monotonic_ns()}.log"
        self.env = with_local_scripts({**os.environ, **env, **(extra_env or {})})
        self.process: subprocess.Popen | None = None

    def start(self) -> ManagedProcess:
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            ["bash", "-c", f"exec {procfile_commands()[self.name]}"],
            cwd=REPO,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def signal_group(self, signum: int) -> None:
        """Signal every process of the group, as a PaaS does on shutdown."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signum)

    def stop(self, timeout: float = 30) -> int | None:
        """SIGTERM the whole group and wait; SIGKILL what is left."""
        self.signal_group(signal.SIGTERM)
        return self.wait_stopped(timeout)

    def wait_stopped(self, timeout: float = 30) -> int | None:
        """Wait for the process to end (after a SIGTERM sent earlier); SIGKILL the group after `timeout` seconds."""
        if self.process is None:
            return None
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.signal_group(signal.SIGKILL)
            return self.process.wait(timeout=10)

    def kill(self) -> None:
        """SIGKILL the whole group: a crash, with no chance to clean up."""
        self.signal_group(signal.SIGKILL)
        self.process.wait(timeout=10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def wait_until(predicate, timeout: float, interval: float = 0.2, message: str | Callable[[], str] = "condition"):
    """Poll `predicate` until it returns something truthy; fail the test after `timeout` seconds.

    `message` may be a function, called on failure to describe the state then.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout} s waiting for {message() if callable(message) else message}")


def wait_for_web(base_url: str) -> None:
    """Block until the web process at `base_url` answers /healthz."""

    def healthy():
        try:
            return requests.get(f"{base_url}/healthz", timeout=5).status_code == 200
        except requests.RequestException:  # not listening yet, or still booting its workers
            return False

    wait_until(healthy, timeout=60, message="web to answer /healthz")


def start_web(procfile, port: int | None = None, processes: int = 2, **env) -> str:
    """Start the Procfile's web process (with `env` added); return its base URL once it answers."""
    port = port or free_port()
    procfile("web", PORT=port, WEB_CONCURRENCY=processes, **env)
    base_url = f"http://127.0.0.1:{port}"
    wait_for_web(base_url)
    return base_url


def delete_namespace(redis_url: str, namespace: str) -> None:
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{namespace}*", count=1000))
    if keys:
        client.delete(*keys)
