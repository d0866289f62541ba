"""Saying once that Postgres or Redis cannot be reached, not on every tick of a loop that keeps trying.

The clock runs each of its steps every few seconds. While the database
was gone (an embedded Postgres killed, a restart) every step of every tick
logged its traceback: pages of the same error that hid everything else.
An `OutageLog` logs one line naming the server and the reason when an
outage starts, nothing while it lasts, and one line when a tick no longer
fails for it. Any other error is the caller's to log, traceback and all.
"""

from __future__ import annotations

import logging

import psycopg
import redis.exceptions
from sqlalchemy.exc import DBAPIError

DATABASE = "the database (Postgres)"
REDIS = "Redis"


def unreachable_server(error: BaseException) -> str | None:
    """DATABASE or REDIS when `error` means that server cannot be reached; None for any other error."""
    if isinstance(error, (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)):
        return REDIS
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return DATABASE
    # Through SQLAlchemy or straight from psycopg (the clock's LISTEN connection). A failed connect or a
    # connection cut has no SQLSTATE; 08xxx are connection errors, 57P0x a server shutting down or starting.
    # Other operational errors (a lock timeout, 55P03) come from a server that answers.
    cause = error.orig if isinstance(error, DBAPIError) else error
    state = getattr(cause, "sqlstate", None)
    if isinstance(cause, psycopg.OperationalError) and (state is None or state.startswith(("08", "57P0"))):
        return DATABASE
    return None


def _first_line(error: BaseException) -> str:
    text = str(getattr(error, "orig", None) or error).strip()
    return text.splitlines()[0] if text else type(error).__name__


class OutageLog:
    """One line when a server becomes unreachable, one when it is back; silence in between."""

    def __init__(self, logger: logging.Logger, retry: str) -> None:
        self.logger = logger
        #: What the process does meanwhile, for the first line ("retries every 5 s").
        self.retry = retry
        self.down: set[str] = set()
        self._failed_this_round: set[str] = set()

    def note(self, error: BaseException) -> bool:
        """True when `error` is an unreachable server (logged once per outage); False: the caller logs it."""
        server = unreachable_server(error)
        if server is None:
            return False
        self._failed_this_round.add(server)
        if server not in self.down:
            self.down.add(server)
            self.logger.error(
                "%s cannot be reached (%s); %s and says nothing more until it is back",
                server,
                _first_line(error),
                self.retry,
            )
        return True

    def round_done(self) -> None:
        """End of one round of work: a server that failed none of it is back.

        (A round that did not use Redis counts as Redis being back: should it
        still be gone, the next round that uses it says so again, once.)
        """
        for server in sorted(self.down - self._failed_this_round):
            self.down.discard(server)
            self.logger.warning("%s is reachable again", server)
        self._failed_this_round = set()
