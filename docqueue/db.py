"""Database engine and sessions for processes that do not run Flask.

The web process gets its session from Flask-SQLAlchemy instead; both bind
the same models, and every domain function takes the session it should use.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator

import psycopg
from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session, sessionmaker

from docqueue.settings import get_settings

_engines: dict[tuple[int, str], Engine] = {}


def connect_args() -> dict:
    """Session settings for every connection docqueue opens (web, worker, clock, PDF processes).

    `lock_timeout`: a statement waits at most DB_LOCK_TIMEOUT_MS for a row
    lock, then fails (and is retried as a transient error) instead of
    hanging behind a frozen process. `idle_in_transaction_session_timeout`:
    Postgres ends a session idle inside a transaction for
    DB_IDLE_IN_TRANSACTION_TIMEOUT_SECONDS, releasing the locks a frozen
    (SIGSTOPped) or wedged process would otherwise hold for ever. 0 turns either off.
    """
    settings = get_settings()
    options = (
        f"-c lock_timeout={settings.db_lock_timeout_ms} "
        f"-c idle_in_transaction_session_timeout={settings.db_idle_in_transaction_timeout_seconds * 1000}"
    )
    return {"options": options}


def get_engine() -> Engine:
    """This process's engine; a forked child builds its own pool."""
    url = get_settings().require_database_url()
    key = (os.getpid(), url)
    if key not in _engines:
        _engines[key] = create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5, connect_args=connect_args())
    return _engines[key]


@contextmanager
def copy_rows(session: Session, statement: str, types: list[str]) -> Iterator[psycopg.Copy]:
    """A binary `COPY ... FROM STDIN` in the session's transaction: many rows, one statement.

    For bulk writes, where a multi-row INSERT would spend its time turning
    Python values into text. `types` are the Postgres types of the columns.
    """
    cursor = session.connection().connection.driver_connection.cursor()
    try:
        with cursor.copy(statement) as copy:
            copy.set_types(types)
            yield copy
    finally:
        cursor.close()


@contextmanager
def session_scope() -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    session = sessionmaker(bind=get_engine(), expire_on_commit=False)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
