"""Database engine and sessions for processes that do not run Flask.

The web process gets its session from Flask-SQLAlchemy instead; both bind
the same models, and every domain function takes the session it should use.
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from typing import Callable, Iterator

import psycopg
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker

from docqueue.connections import configure_engine, engine_options, process_role
from docqueue.settings import get_settings

_engines: dict[tuple[int, str], Engine] = {}

#: A pooled connection idle for longer than this is pinged before it is used again.
PING_AFTER_IDLE_SECONDS = 1.0


def _ping_when_idle(engine: Engine) -> None:
    """Ping a pooled connection before use only when it has been idle for PING_AFTER_IDLE_SECONDS.

    A worker's transactions run back to back, and `pool_pre_ping`'s round
    trip before each was a tenth of a worker thread's time. A connection
    that idled may have been cut (a Postgres restart, a proxy's timeout),
    so it is pinged and replaced if dead; one cut within the last second
    fails its statement as a lost connection, a transient error, and
    SQLAlchemy then replaces the whole pool.
    """

    @event.listens_for(engine, "checkin")
    def _remember_when(dbapi_connection, record) -> None:
        record.info["checked_in"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_connection, record, proxy) -> None:
        checked_in = record.info.get("checked_in")  # None: a connection just opened
        if checked_in is not None and time.monotonic() - checked_in > PING_AFTER_IDLE_SECONDS:
            try:
                engine.dialect.do_ping(dbapi_connection)
            except psycopg.Error as error:
                raise DisconnectionError("the pooled connection is gone") from error


def get_engine() -> Engine:
    """This process's engine, its pool sized by the process's role; a forked child builds its own pool."""
    url = get_settings().require_database_url()
    key = (os.getpid(), url)
    if key not in _engines:
        engine = create_engine(url, **engine_options(process_role()))
        configure_engine(engine)
        _ping_when_idle(engine)
        _engines[key] = engine
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


def last_before_commit(session: Session, write: Callable[[], None]) -> None:
    """Run `write` at the end of the session's transaction, just before it commits (an error it raises rolls
    the transaction back, as one raised where it was asked for would).

    For a write to a row that many transactions update (a user's count of pages today): its lock is held
    from that write to the commit, so the later it comes, the less the others wait.
    """
    event.listen(session, "before_commit", lambda _session: write(), once=True)


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
