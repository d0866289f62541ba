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


def get_engine() -> Engine:
    """This process's engine; a forked child builds its own pool."""
    url = get_settings().require_database_url()
    key = (os.getpid(), url)
    if key not in _engines:
        _engines[key] = create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)
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
