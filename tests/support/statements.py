"""Counting the statements and commits psycopg sends from the test's process."""

from __future__ import annotations

import collections
from collections.abc import Iterator
from contextlib import contextmanager

from psycopg import _connection_base, _cursor_base, client_cursor


class StatementCounter:
    """Statements and COMMITs psycopg sends from this process, under the label of what was running."""

    def __init__(self) -> None:
        self.statements: collections.Counter[str] = collections.Counter()
        self.commits: collections.Counter[str] = collections.Counter()
        self.label = "queue"


@contextmanager
def counting_statements(monkeypatch) -> Iterator[StatementCounter]:
    """Count, as bench/statement_counter does for whole processes, every statement psycopg sends (a query,
    a prepared query's execution, the start of a COPY, the pool's pre-ping) and every COMMIT."""
    counter = StatementCounter()

    def counted(method, count):
        def wrapper(self, *args, **kwargs):
            count(args)
            return method(self, *args, **kwargs)

        return wrapper

    def statement(args) -> None:
        counter.statements[counter.label] += 1

    def command(args) -> None:
        sent = args[0] if args else b""
        sent = bytes(sent) if isinstance(sent, (bytes, bytearray, memoryview)) else str(sent).encode()
        if sent.lstrip().upper().startswith(b"COMMIT"):
            counter.commits[counter.label] += 1

    with monkeypatch.context() as patch:
        for cls in (_cursor_base.BaseCursor, client_cursor.ClientCursor):
            if "_execute_send" in vars(cls):
                patch.setattr(cls, "_execute_send", counted(vars(cls)["_execute_send"], statement))
        base = _cursor_base.BaseCursor
        patch.setattr(base, "_send_query_prepared", counted(base._send_query_prepared, statement))
        connection = _connection_base.BaseConnection
        patch.setattr(connection, "_exec_command", counted(connection._exec_command, command))
        yield counter
