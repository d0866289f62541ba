"""How a docqueue process connects to Postgres: its connection budget, and session settings that survive a pooler.

Every process has a role (web worker, dramatiq worker process, PDF process,
clock, ingest, or a command) set once at its entry point. The role fixes
the most connections its pool may hold (`DB_*_CONNECTIONS`, no overflow, so
the README's connection budget is a real ceiling) and the
`application_name` Postgres shows for it (`docqueue-worker`, ...), which is
how an operator counts them in `pg_stat_activity`.

Behind a transaction-mode pooler (`DATABASE_POOLER=transaction`, e.g.
PgBouncer) consecutive transactions of one client connection run on
different server connections, so three things change:

- psycopg 3 must not prepare statements (it does after 5 executions): the
  next transaction's server connection does not have them.
- The `options` startup parameter (`-c lock_timeout=...`) is refused or
  dropped by the pooler, so `lock_timeout` and
  `idle_in_transaction_session_timeout` are set with `SET LOCAL` at the
  start of every transaction instead (one more round trip a transaction).
- LISTEN needs a session of its own: the clock uses `DATABASE_DIRECT_URL`
  for it, or its tick alone (`docqueue/clock.py`).
"""

from __future__ import annotations

import logging
from enum import StrEnum

from sqlalchemy import Engine, event

from docqueue.settings import Settings, get_settings

logger = logging.getLogger(__name__)


class ProcessRole(StrEnum):
    """What a process is, for its connection budget and the name Postgres shows for its connections."""

    WEB = "web"
    WORKER = "worker"
    PDF = "pdf"
    CLOCK = "clock"
    INGEST = "ingest"
    #: Anything else: the release step, `docqueue user ...`, tests. A short-lived process, not budgeted.
    COMMAND = "command"


_role = ProcessRole.COMMAND


def set_process_role(role: ProcessRole) -> None:
    """Say what this process is; call at its entry point, before its first connection."""
    global _role
    _role = role


def process_role() -> ProcessRole:
    """This process's role (COMMAND unless its entry point said otherwise)."""
    return _role


def pool_limit(role: ProcessRole, settings: Settings) -> int | None:
    """The most connections a process of `role` holds at once; None for a command (not budgeted)."""
    return {
        ProcessRole.WEB: settings.db_web_connections,
        ProcessRole.WORKER: settings.db_worker_connections,
        ProcessRole.PDF: settings.db_pdf_process_connections,
        ProcessRole.CLOCK: settings.db_clock_connections,
        ProcessRole.INGEST: settings.db_ingest_connections,
    }.get(role)


def application_name(role: ProcessRole) -> str:
    """The `application_name` of a `role` process's connections, as `pg_stat_activity` shows it."""
    return f"docqueue-{role}"


def session_options(settings: Settings) -> dict[str, str]:
    """The Postgres settings every docqueue session runs with.

    `lock_timeout`: a statement waits at most DB_LOCK_TIMEOUT_MS for a row
    lock, then fails (and is retried as a transient error) instead of
    hanging behind a frozen process. `idle_in_transaction_session_timeout`:
    Postgres ends a session idle inside a transaction for
    DB_IDLE_IN_TRANSACTION_TIMEOUT_SECONDS, releasing the locks a frozen
    (SIGSTOPped) or wedged process would otherwise hold for ever. 0 turns either off.
    """
    return {
        "lock_timeout": str(settings.db_lock_timeout_ms),
        "idle_in_transaction_session_timeout": str(settings.db_idle_in_transaction_timeout_seconds * 1000),
    }


def connect_args(role: ProcessRole, settings: Settings | None = None, *, direct: bool = False) -> dict:
    """psycopg's connection arguments for a `role` process; `direct`: a connection that bypasses any pooler."""
    settings = settings or get_settings()
    args: dict = {"application_name": application_name(role)}
    if settings.behind_transaction_pooler and not direct:
        # Prepared statements live in one server connection; the pooler hands the next transaction another.
        args["prepare_threshold"] = None
    else:
        args["options"] = " ".join(f"-c {name}={value}" for name, value in session_options(settings).items())
    return args


def engine_options(role: ProcessRole, settings: Settings | None = None) -> dict:
    """`create_engine` keyword arguments for a `role` process: its capped pool and connection arguments."""
    settings = settings or get_settings()
    limit = pool_limit(role, settings)
    pool = {"pool_size": 5, "max_overflow": 5} if limit is None else {"pool_size": limit, "max_overflow": 0}
    return {**pool, "pool_timeout": settings.db_pool_timeout_seconds, "connect_args": connect_args(role, settings)}


def configure_engine(engine: Engine, settings: Settings | None = None) -> None:
    """Give `engine` its session settings per transaction behind a pooler, or else a hint when a pooler refuses them."""
    settings = settings or get_settings()
    if settings.behind_transaction_pooler:
        _set_session_options_per_transaction(engine, settings)
    else:
        _explain_a_pooler_refusal(engine)


def _explain_a_pooler_refusal(engine: Engine) -> None:
    """Name the setting to change when DATABASE_URL is a pooler but DATABASE_POOLER is not set.

    PgBouncer refuses the `options` parameter that carries the session
    settings ("unsupported startup parameter: options"); every connection
    fails, and the log should say why and what to do.
    """

    @event.listens_for(engine, "handle_error")
    def _explain(context) -> None:
        if "unsupported startup parameter" in str(context.original_exception):
            logger.error(
                "Postgres refused the connection: DATABASE_URL looks like a connection pooler (PgBouncer). "
                "Set DATABASE_POOLER=transaction on every process (README, Deploy)."
            )


def _set_session_options_per_transaction(engine: Engine, settings: Settings) -> None:
    """Set `session_options` at the start of each of `engine`'s transactions.

    `SET LOCAL` lasts until the transaction ends, so nothing leaks to the
    next client the pooler gives the server connection to. Without a
    pooler the settings come with the connection (`connect_args`).
    """
    # set_config(..., true) is SET LOCAL: both settings in one statement, one round trip.
    statement = "SELECT " + ", ".join(
        f"set_config('{name}', '{value}', true)" for name, value in session_options(settings).items()
    )

    @event.listens_for(engine, "begin")
    def _set_local(connection) -> None:
        # An autocommit connection has no transaction for SET LOCAL to last in (and gets no pooler's swap within one).
        if connection.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
            connection.exec_driver_sql(statement)


def listen_url(settings: Settings | None = None) -> str | None:
    """Where the clock LISTENs for dispatch requests: a session of its own, never through a transaction pooler.

    DATABASE_DIRECT_URL when given; else DATABASE_URL, unless that goes
    through a transaction pooler (where LISTEN does not work): then None,
    and the clock runs on its tick alone.
    """
    settings = settings or get_settings()
    if settings.database_direct_url:
        return settings.database_direct_url
    return None if settings.behind_transaction_pooler else settings.require_database_url()
