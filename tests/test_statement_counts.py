"""What a document costs the database in statements and commits, counted where psycopg sends them.

Round trips bound throughput here (see PITFALLS), so these are promises:
a stage writes a few hundred pages or images in one transaction of a few
statements, not a transaction per page or per image.
"""

from __future__ import annotations

import io

import sqlalchemy as sa

from docqueue.storage import blob_store


def test_a_blob_put_again_replaces_the_old_one_whatever_their_sizes(session, monkeypatch):
    from docqueue.storage import postgres

    monkeypatch.setattr(postgres, "CHUNK_BYTES", 4)
    store = blob_store(session)

    def stored(key: str) -> bytes:
        out = io.BytesIO()
        store.download_to(key, out)
        return out.getvalue()

    statements: list[str] = []
    sa.event.listen(session.connection(), "before_cursor_execute", lambda *args: statements.append(args[2]))
    store.put("k", io.BytesIO(b"0123456789abcdef0123456789abcdef0123456789"))  # 11 chunks: two statements
    assert len(statements) == 2 and not any(statement.lstrip().startswith("DELETE") for statement in statements)
    assert stored("k") == b"0123456789abcdef0123456789abcdef0123456789"
    for data in (b"short", b"0123456789abcdef0123456789abcdef0123456789" * 2, b"", b"x"):
        store.put("k", io.BytesIO(data))
        assert stored("k") == data
    statements.clear()
    store.put("new", io.BytesIO(b"tiny"))
    assert len(statements) == 1, "a new small blob is one statement"
