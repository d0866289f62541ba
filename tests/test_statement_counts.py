"""What a document costs the database in statements and commits, counted where psycopg sends them.

Round trips bound throughput here (see PITFALLS), so these are promises:
a stage writes a few hundred pages or images in one transaction of a few
statements, not a transaction per page or per image.
"""

from __future__ import annotations

import io

import pytest
import sqlalchemy as sa

from docqueue.db import session_scope
from docqueue.queue import DocumentQueueService, run_outputs
from docqueue.storage import blob_store
from tests.factories import add_document, make_pdf
from tests.test_stages import job_for, process


@pytest.fixture
def owner(make_user):
    return make_user()[0]


def test_retiring_older_runs_is_one_statement_and_keeps_only_the_completing_runs_outputs(session, owner):
    document_id = add_document(session, owner, make_pdf(["one"]))
    first_run = job_for(session, document_id).id
    assert process(session, document_id).status == "completed"
    second_run = DocumentQueueService(session).enqueue(document_id, "inspect", "reprocess")
    session.execute(
        sa.text(
            "INSERT INTO document_pages (job_id, document_id, page_number, text, char_count) VALUES (:j, :d, 1, 'x', 1)"
        ),
        {"j": second_run, "d": document_id},
    )
    for job_id in (first_run, second_run):
        blob_store(session).put(f"{run_outputs.run_blob_prefix(document_id, job_id)}images/abc", io.BytesIO(b"image"))
    session.commit()

    def retire(job_id: int) -> int:
        statements: list[str] = []
        with session_scope() as writer:
            sa.event.listen(writer.connection(), "before_cursor_execute", lambda *args: statements.append(args[2]))
            run_outputs.retire_older_runs(writer, document_id, job_id)
        return len(statements)

    assert retire(second_run) == 1
    pages = session.execute(sa.text("SELECT job_id FROM document_pages WHERE document_id = :d"), {"d": document_id})
    assert pages.scalars().all() == [second_run]
    blobs = session.execute(sa.text("SELECT blob_key FROM blob_chunks WHERE blob_key LIKE '%/runs/%'")).scalars()
    assert blobs.all() == [f"{run_outputs.run_blob_prefix(document_id, second_run)}images/abc"]

    # A document's only run (the first run's queue row gone) keeps its outputs, in the same one statement.
    session.execute(sa.text("DELETE FROM document_queue WHERE id = :j"), {"j": first_run})
    session.commit()
    assert retire(second_run) == 1
    assert session.execute(sa.text("SELECT count(*) FROM document_pages WHERE job_id = :j"), {"j": second_run}).scalar()


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
