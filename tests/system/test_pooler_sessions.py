"""Behind a real transaction-mode PgBouncer: the session settings stay in force, and the pooler's errors are transient.

A pooler refuses the `options` startup parameter that carries
`lock_timeout` and `idle_in_transaction_session_timeout` on a direct
connection, so with DATABASE_POOLER=transaction docqueue sets them in each
transaction. These tests check what they are for, through the pooler: a
statement stops waiting for a lock, and Postgres ends a session left idle
inside a transaction.
"""

from __future__ import annotations

import os
import time

import psycopg
import pytest
import sqlalchemy as sa

from docqueue.errors import failure_kind
from docqueue.local.scratch import migrate, scratch_database
from docqueue.statuses import FailureKind
from tests.support.processes import wait_until

LOCK_TIMEOUT = {"DB_LOCK_TIMEOUT_MS": "500", "DB_IDLE_IN_TRANSACTION_TIMEOUT_SECONDS": "1"}


@pytest.fixture
def pooled_settings(test_env, pooled_env, monkeypatch):
    """This process's settings as a process behind the pooler reads them (short timeouts); restored after."""
    from docqueue.db import _engines
    from docqueue.settings import get_settings

    for name, value in {**pooled_env, **LOCK_TIMEOUT}.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    yield get_settings()
    for key in [key for key in _engines if key[1] == get_settings().database_url]:
        _engines.pop(key).dispose()
    monkeypatch.undo()
    get_settings.cache_clear()


@pytest.fixture
def pooled_engines(pooled_settings):
    """The engines a worker, clock or PDF process (`get_engine`) and a web process (Flask-SQLAlchemy) use."""
    from docqueue.db import get_engine
    from web import create_app
    from web.extensions import db

    app = create_app({"TESTING": True})
    with app.app_context():
        yield {"worker, clock and PDF processes": get_engine(), "web": db.engine}


def test_the_pooler_refuses_the_options_startup_parameter(pgbouncer, test_env):
    # Why the settings cannot come with the connection: PgBouncer turns the connection away.
    with pytest.raises(psycopg.OperationalError, match="unsupported startup parameter: options"):
        psycopg.connect(pgbouncer.raw_url(sa.make_url(test_env["DATABASE_URL"]).database), options="-c lock_timeout=1s")


def test_lock_and_idle_transaction_timeouts_are_in_force_through_the_pooler(owner, pooled_engines, test_env):
    # `owner` first: made with the usual settings, not the one-second idle timeout.
    direct = sa.create_engine(test_env["DATABASE_URL"], poolclass=sa.NullPool)
    for name, engine in pooled_engines.items():
        assert engine.url.port != direct.url.port, "goes through the pooler"
        with engine.connect() as connection:
            assert connection.execute(sa.text("SHOW lock_timeout")).scalar() == "500ms", name
            assert connection.execute(sa.text("SHOW idle_in_transaction_session_timeout")).scalar() == "1s", name

        # A row locked by another session (a frozen process): the statement gives up instead of waiting for ever.
        with direct.connect() as holder:
            holder.execute(sa.text("SELECT 1 FROM users WHERE id = :id FOR UPDATE"), {"id": owner})
            with engine.connect() as connection, pytest.raises(sa.exc.OperationalError) as waited:
                connection.execute(sa.text("SELECT 1 FROM users WHERE id = :id FOR UPDATE"), {"id": owner})
            assert isinstance(waited.value.orig, psycopg.errors.LockNotAvailable), name
            assert failure_kind(waited.value) is FailureKind.TRANSIENT
            holder.rollback()

        # A session left idle inside a transaction holding a lock: Postgres ends it, and the lock is free again.
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1 FROM users WHERE id = :id FOR UPDATE"), {"id": owner})
            time.sleep(3)
            with direct.connect() as other:
                other.execute(sa.text("SET lock_timeout = '5s'"))
                assert (
                    other.execute(sa.text("SELECT id FROM users WHERE id = :id FOR UPDATE"), {"id": owner}).scalar()
                    == owner
                ), (name, "the lock was released")
            with pytest.raises(sa.exc.DBAPIError) as ended:
                connection.execute(sa.text("SELECT 1"))
            assert isinstance(ended.value.orig, psycopg.errors.IdleInTransactionSessionTimeout), name
            assert failure_kind(ended.value) is FailureKind.TRANSIENT, "a new session may pass: not the file's fault"
        with engine.connect() as connection:
            assert connection.execute(sa.text("SELECT 1")).scalar() == 1, (name, "the pool recovers")
    direct.dispose()


def test_the_settings_do_not_leak_to_other_clients_of_the_pooler(pooled_engines, pgbouncer, test_env):
    database = sa.make_url(test_env["DATABASE_URL"]).database
    for engine in pooled_engines.values():
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    # Another application sharing the pooler's server connections keeps Postgres's defaults (SET LOCAL, not SET).
    with psycopg.connect(pgbouncer.raw_url(database), autocommit=True) as other:
        for _ in range(5):
            assert other.execute("SHOW lock_timeout").fetchone()[0] == "0"


def test_prepared_statement_errors_from_a_pooler_are_transient(pgbouncer, test_env):
    # psycopg's default (prepare after 5 executions), made immediate, through the pooler: the errors the
    # issue saw. They are the pooler's doing, so a stage that meets one retries instead of failing the document.
    engine = sa.create_engine(
        pgbouncer.url_for(test_env["DATABASE_URL"]), poolclass=sa.NullPool, connect_args={"prepare_threshold": 0}
    )
    seen: dict[type, FailureKind] = {}

    def run(connection, statement: str) -> None:
        try:
            connection.execute(sa.text(statement), {"n": 1})
            connection.commit()
        except sa.exc.DBAPIError as error:
            seen[type(error.orig)] = failure_kind(error)
            connection.rollback()

    preparer, other, holder = engine.connect(), engine.connect(), engine.connect()
    try:
        run(preparer, "SELECT CAST(:n AS int) + 1")  # prepared on server connection S1
        holder.execute(sa.text("SELECT 2"))  # S1, the pooler's most recently used, now busy in a transaction
        run(preparer, "SELECT CAST(:n AS int) + 1")  # on another server connection: "_pg3_0" does not exist
        holder.commit()  # S1 free again
        run(other, "SELECT CAST(:n AS int) + 2")  # a new client's first prepared statement, "_pg3_0" again, on S1
    finally:
        for connection in (preparer, other, holder):
            connection.close()
        engine.dispose()
    assert seen == {
        psycopg.errors.InvalidSqlStatementName: FailureKind.TRANSIENT,
        psycopg.errors.DuplicatePreparedStatement: FailureKind.TRANSIENT,
    }


def test_the_clock_behind_a_pooler_without_a_direct_url_says_it_runs_on_its_tick(procfile, pooled_env):
    tick_only = {name: value for name, value in pooled_env.items() if name != "DATABASE_DIRECT_URL"}
    clock = procfile("clock", **tick_only)
    wait_until(lambda: "clock started" in clock.log(), timeout=60, message="the clock to start")
    assert "dispatching every 1 s (DATABASE_POOLER=transaction and no DATABASE_DIRECT_URL to LISTEN on)" in clock.log()
    assert clock.process.poll() is None, clock.log()


def test_the_release_step_migrates_a_new_database_through_the_pooler(pgbouncer, test_env):
    # Alembic's transactional DDL through the pooler, prepared statements off, as a managed service's release runs.
    server_url = sa.make_url(test_env["DATABASE_URL"]).set(database="postgres").render_as_string(hide_password=False)
    with scratch_database(server_url, "docqueue_pooled") as database_url:
        pooled = {"DATABASE_URL": pgbouncer.url_for(database_url), "DATABASE_POOLER": "transaction"}
        migrate({**os.environ, **pooled})
        direct = sa.create_engine(database_url, poolclass=sa.NullPool)
        with direct.connect() as connection:
            assert connection.execute(sa.text("SELECT to_regclass('document_queue')")).scalar() == "document_queue"
        direct.dispose()


def test_a_pooler_behind_database_url_without_database_pooler_is_named_in_the_log(pgbouncer, test_env, caplog):
    from docqueue.connections import ProcessRole, configure_engine, engine_options
    from docqueue.settings import get_settings

    # The settings of a process told nothing of the pooler: options go with the connection, and PgBouncer refuses.
    engine = sa.create_engine(pgbouncer.url_for(test_env["DATABASE_URL"]), **engine_options(ProcessRole.WORKER))
    configure_engine(engine, get_settings())
    with pytest.raises(sa.exc.OperationalError) as refused:
        engine.connect()
    engine.dispose()
    assert "unsupported startup parameter: options" in str(refused.value)
    assert "Set DATABASE_POOLER=transaction on every process" in caplog.text


def test_worker_connections_must_outnumber_worker_threads(monkeypatch):
    from docqueue.settings import SettingsError, load_settings

    monkeypatch.setenv("WORKER_THREADS", "8")
    assert load_settings().db_worker_connections == 10
    monkeypatch.setenv("DB_WORKER_CONNECTIONS", "8")
    with pytest.raises(SettingsError, match=r"DB_WORKER_CONNECTIONS must be more than WORKER_THREADS \(8\), got 8"):
        load_settings()
