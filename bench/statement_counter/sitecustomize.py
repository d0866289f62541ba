"""Counts the statements psycopg sends, per process, when BENCH_STATEMENT_COUNTS names a folder.

For bench/big_document.py: put this folder first on PYTHONPATH of a process
and Python imports this module at start-up (`site` runs `sitecustomize`),
in that process and in every Python process it starts with the same
environment (dramatiq's worker processes, the PDF pool's spawned ones). No
code outside bench/ changes, and Postgres needs no `pg_stat_statements`
(which is not in this server's `shared_preload_libraries`).

Each process counts into its own file, `<folder>/<pid>.count`, through a
memory map: four 64-bit counters that a reader can sum at any time, even
after the process was killed (`benchkit.read_statement_counts`). Counted where every statement of psycopg 3
leaves the client:

0. statements: a cursor's query sent (`_execute_send`, every statement of
   an `executemany` and the start of a COPY included) or a prepared one
   executed (`_send_query_prepared`: psycopg prepares a query it has run 5
   times and then executes it by name);
1. COMMIT; 2. BEGIN; 3. other commands the connection sends itself
   (ROLLBACK, SAVEPOINT, a server-side cursor's DECLARE/FETCH/CLOSE).
"""

import os

FOLDER = os.environ.get("BENCH_STATEMENT_COUNTS")

if FOLDER:
    import mmap
    import struct
    import threading

    import psycopg
    from psycopg import _connection_base, _cursor_base, client_cursor

    _lock = threading.Lock()
    _state = {"pid": None, "map": None}

    def _count(slot: int) -> None:
        with _lock:
            if _state["pid"] != os.getpid():  # a forked child counts in a file of its own
                with open(os.path.join(FOLDER, f"{os.getpid()}.count"), "w+b") as handle:
                    handle.write(bytes(32))
                    handle.flush()
                    _state["map"] = mmap.mmap(handle.fileno(), 32)
                _state["pid"] = os.getpid()
            offset = slot * 8
            (value,) = struct.unpack_from("<q", _state["map"], offset)
            struct.pack_into("<q", _state["map"], offset, value + 1)

    def _counting(method, slot_of):
        def wrapper(self, *args, **kwargs):
            _count(slot_of(args))
            return method(self, *args, **kwargs)

        return wrapper

    def _command_slot(args) -> int:
        command = args[0] if args else b""
        command = bytes(command) if isinstance(command, (bytes, bytearray, memoryview)) else str(command).encode()
        word = command.lstrip()[:6].upper()
        return 1 if word.startswith(b"COMMIT") else 2 if word.startswith(b"BEGIN") else 3

    for cls in (_cursor_base.BaseCursor, client_cursor.ClientCursor):
        if "_execute_send" in vars(cls):
            cls._execute_send = _counting(cls._execute_send, lambda args: 0)
    _cursor_base.BaseCursor._send_query_prepared = _counting(_cursor_base.BaseCursor._send_query_prepared, lambda a: 0)
    _connection_base.BaseConnection._exec_command = _counting(
        _connection_base.BaseConnection._exec_command, _command_slot
    )
    del psycopg
