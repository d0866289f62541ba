"""Throwaway databases for tests and benchmarks: made, migrated, dropped.

Only what this module created is ever dropped.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from contextlib import contextmanager
from typing import Iterator

import sqlalchemy as sa

from docqueue.local.procfile import REPO_ROOT, procfile_commands, with_local_scripts
from docqueue.models import Base
from docqueue.setting_readers import normalize_database_url


@contextmanager
def scratch_database(server_url: str, prefix: str) -> Iterator[str]:
    """Create a database named `<prefix>_<random>` on the server at `server_url`; yield its URL; drop it."""
    # No pooled connection may outlive its statement: forked processes (the PDF pool) would inherit its socket.
    admin = sa.create_engine(normalize_database_url(server_url), isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
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
        procfile_commands()["release"],
        shell=True,
        cwd=REPO_ROOT,
        env=with_local_scripts(env),
        check=True,
        capture_output=True,
    )


def empty_all_tables(engine: sa.Engine) -> None:
    """Delete every row of every table the models define (not Alembic's version table)."""
    tables = ", ".join(table.name for table in Base.metadata.sorted_tables)
    with engine.begin() as connection:
        connection.execute(sa.text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
