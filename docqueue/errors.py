"""The errors a stage can end with, and which of them are worth another try.

A failure that will repeat on every attempt (the file is the problem, or a
bug in our code) fails the document at once with its reason. Only transient
ones (a lost connection, a connection pooler's error, a timeout talking to
a service, 429/5xx) back off and retry: anything not known to be transient
is treated as permanent.
"""

from __future__ import annotations

import sys

import psycopg
import sqlalchemy.exc

from docqueue.statuses import FailureKind


class StageError(Exception):
    """An error of ours with a message fit to show the uploader as is."""

    kind = FailureKind.PERMANENT
    #: What kind of failure it is, in the words the attempt history shows its owner.
    label = "processing failed"


class DocumentRejected(StageError):
    """The file itself is the problem (wrong type, encrypted, damaged): fail at once, never retry.

    The message is shown to the uploader as is, so it says what is wrong and what to do.
    """

    label = "file rejected"


class StageTimeout(StageError):
    """The stage ran past its time limit: permanent, as the same file would take as long again."""

    label = "time limit"

    @classmethod
    def after(cls, seconds: float) -> StageTimeout:
        """The error of a stage stopped at a limit of `seconds` (the runner puts the stage's name first)."""
        return cls(f"stopped after the {seconds:g} s time limit")


class TransientError(StageError):
    """Something outside the file failed and may work later: retry after a backoff."""

    kind = FailureKind.TRANSIENT
    label = "temporary problem"


_TRANSIENT_TYPES = (
    TransientError,
    ConnectionError,
    TimeoutError,
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    # No pooled connection came free within the pool's timeout: the process's connection budget is busy.
    sqlalchemy.exc.TimeoutError,
    # Raised by psycopg itself where SQLAlchemy does not wrap it (a COPY on the driver's cursor). A pooler's own
    # errors (PgBouncer's "no more connections allowed", "query_wait_timeout") are SQLSTATE 08P01, one of these.
    psycopg.OperationalError,
    psycopg.InterfaceError,
)

_TRANSIENT_DATABASE_ERRORS = (
    # A statement prepared on one server connection, missing or already there on the one a pooler gave the next
    # transaction: the pooler's doing, not the file's (psycopg prepares nothing when DATABASE_POOLER is set).
    psycopg.errors.InvalidSqlStatementName,
    psycopg.errors.DuplicatePreparedStatement,
    # Postgres ended the session after DB_IDLE_IN_TRANSACTION_TIMEOUT_SECONDS (a process paused too long): an
    # InternalError to psycopg (SQLSTATE 25P03), as a pooler reports it, but the next attempt gets a new session.
    psycopg.errors.IdleInTransactionSessionTimeout,
)


def _database_cause(error: BaseException) -> BaseException:
    """The driver's error under SQLAlchemy's wrapper, else `error` itself."""
    return error.orig if isinstance(error, sqlalchemy.exc.DBAPIError) and error.orig is not None else error


def failure_kind(error: BaseException) -> FailureKind:
    """Whether `error` may pass on another attempt."""
    if isinstance(error, StageError):
        return error.kind
    transient = _TRANSIENT_TYPES
    # Redis's errors exist only in a process that imported redis; PDF processes never do (it costs ~4 MB).
    redis_errors = sys.modules.get("redis.exceptions")
    if redis_errors is not None:
        transient += (redis_errors.ConnectionError, redis_errors.TimeoutError)
    if isinstance(error, transient) or isinstance(_database_cause(error), _TRANSIENT_DATABASE_ERRORS):
        return FailureKind.TRANSIENT
    return FailureKind.PERMANENT


def failure_label(error: BaseException) -> str:
    """What kind of failure `error` is, in the product's words: never a library's class name (that is logged)."""
    if isinstance(error, StageError):
        return error.label
    return TransientError.label if failure_kind(error) is FailureKind.TRANSIENT else "internal error"


def is_users_news(error: BaseException) -> bool:
    """Whether `error` is about the user's own file, which their document page tells them, not an operator's alarm.

    Sentry hears of what an operator must act on: internal errors, time limits, a service's exhausted retries.
    """
    return isinstance(error, DocumentRejected)
