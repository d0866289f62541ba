"""Start every Procfile process from a production install (`pip install .`, no extras) and check it runs.

Usage: python .ci/procfile_smoke.py VENV_BIN. Runs `release` (migrations)
on a scratch database, then `web`, `worker` and `clock` with VENV_BIN
first on PATH, as a buildpack's dyno would; exits non-zero, with the
failing process's log, if one exits or does not say it is ready within
a minute. Uses DATABASE_URL and REDIS_URL when set, else embedded servers.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from docqueue.local.embedded import start_embedded_servers
from docqueue.local.procfile import REPO_ROOT, procfile_commands
from docqueue.local.scratch import scratch_database

READY_WITHIN_SECONDS = 60
# What each process says once it serves; `web` is asked over HTTP instead.
READY_LINES = {"worker": "Worker process is ready", "clock": "clock started"}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _web_answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


def _start(name: str, env: dict, logs: Path) -> tuple[subprocess.Popen, Path]:
    log_path = logs / f"{name}.log"
    process = subprocess.Popen(
        ["bash", "-c", f"exec {procfile_commands()[name]}"],
        cwd=REPO_ROOT,
        env=env,
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    return process, log_path


def _fail(name: str, log_path: Path, why: str) -> None:
    sys.exit(f"production install: {name} {why}\n--- {name} log ---\n{log_path.read_text(errors='replace')[-6000:]}")


@contextmanager
def _servers() -> Iterator[tuple[str, str]]:
    """(Postgres URL, Redis URL): the environment's, else embedded ones for the duration."""
    if os.environ.get("DATABASE_URL") and os.environ.get("REDIS_URL"):
        yield os.environ["DATABASE_URL"], os.environ["REDIS_URL"]
        return
    with tempfile.TemporaryDirectory() as folder:
        servers = start_embedded_servers(Path(folder), database="postgres")
        try:
            yield servers.database_url, servers.redis_url
        finally:
            servers.stop()


def main(venv_bin: str) -> None:
    base = {key: value for key, value in os.environ.items() if key not in ("VIRTUAL_ENV", "PYTHONPATH")}
    with (
        _servers() as (server_url, redis_url),
        scratch_database(server_url, "docqueue_smoke") as database_url,
        tempfile.TemporaryDirectory() as logs,
    ):
        port = _free_port()
        env = {
            **base,
            "PATH": os.pathsep.join([venv_bin, base.get("PATH", "")]),
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "REDIS_NAMESPACE": f"docqueue-smoke-{secrets.token_hex(4)}",
            "SECRET_KEY": secrets.token_hex(16),
            "PORT": str(port),
            "WEB_CONCURRENCY": "1",
            "PDF_WORKER_PROCESSES": "1",
        }
        release = subprocess.run(
            ["bash", "-c", procfile_commands()["release"]], cwd=REPO_ROOT, env=env, capture_output=True, text=True
        )
        if release.returncode != 0:
            sys.exit(f"production install: release failed\n{release.stdout}{release.stderr}")
        started = {name: _start(name, env, Path(logs)) for name in ("web", "worker", "clock")}
        try:
            waiting = set(started)
            deadline = time.monotonic() + READY_WITHIN_SECONDS
            while waiting and time.monotonic() < deadline:
                for name in sorted(waiting):
                    process, log_path = started[name]
                    if process.poll() is not None:
                        _fail(name, log_path, f"exited with {process.returncode}")
                    ready = _web_answers(port) if name == "web" else READY_LINES[name] in log_path.read_text()
                    if ready:
                        waiting.discard(name)
                        print(f"production install: {name} started")
                time.sleep(0.5)
            for name in sorted(waiting):
                _fail(name, started[name][1], f"did not get ready within {READY_WITHIN_SECONDS} s")
        finally:
            for process, _ in started.values():
                if process.poll() is None:
                    os.killpg(process.pid, signal.SIGTERM)
            for process, _ in started.values():
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)


if __name__ == "__main__":
    main(sys.argv[1])
