"""Throwaway databases for tests and benchmarks: made, migrated, dropped.

Only what this module created is ever dropped.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import sqlalchemy as sa

from docqueue.settings import normalize_database_url

REPO_ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def scratch_database(server_url: str, prefix: str) -> Iterator[str]:
    """Create a database named `<prefix>_<random>` on the server at `server_url`; yield its URL; drop it."""
    admin = sa.create_engine(normalize_database_url(server_url), isolation_level="AUTOCOMMIT")
    name = f"{prefix}_{os.getpid()}_{secrets.token_hex(4)}"
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield sa.make_url(normalize_database_url(server_url)).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def migrate(env: dict) -> None:
    """Apply the migrations with the Procfile's release command, in the environment `env`."""
    subprocess.run(
        [sys.executable, "-m", "flask", "--app", "web", "db", "upgrade"],
        cwd=REPO_ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
