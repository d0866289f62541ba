"""Dispatch requests: work that frees capacity or adds jobs never waits for the clock's next tick.

Rules this module keeps:

- Every caller of the dispatcher first bumps the `dispatch_requests`
  sequence, then tries the dispatcher lock. A sequence is not transactional:
  the bump is visible to every session at once and never rolled back.
- The lock holder reads the sequence after taking the lock and again after
  committing. If it moved, someone asked while it worked and found the lock
  taken; what they committed may have come too late for this run. So the
  holder notifies the clock (`CHANNEL`), which runs the dispatcher at once.
- The clock LISTENs on `CHANNEL` between ticks, so such a request is served
  in milliseconds; the tick stays as the fallback for a lost notification.
"""

from __future__ import annotations

from sqlalchemy import Connection, text
from sqlalchemy.orm import Session

CHANNEL = "docqueue_dispatch"


def request_dispatch(session: Session) -> None:
    """Say that this caller's committed work wants the dispatcher (before trying its lock)."""
    session.execute(text("SELECT nextval('dispatch_requests')"))


def latest_request(session: Session) -> int:
    """The number of the newest dispatch request, for the lock holder to compare before and after its run."""
    return session.execute(text("SELECT last_value FROM dispatch_requests")).scalar_one()


def notify_clock(session: Session) -> None:
    """Wake the clock to run the dispatcher again (sent when `session` commits)."""
    session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": CHANNEL})


def wait_for_notification(connection: Connection, timeout: float) -> bool:
    """Block until the clock is notified or `timeout` seconds pass; True if notified.

    `connection` must be in autocommit mode and have run `listen(connection)`.
    """
    return any(True for _ in connection.connection.driver_connection.notifies(timeout=timeout, stop_after=1))


def listen(connection: Connection) -> None:
    """Subscribe `connection` to dispatch notifications."""
    connection.exec_driver_sql(f"LISTEN {CHANNEL}")
