"""What a document costs the database in statements and commits, counted where psycopg sends them.

Round trips bound throughput here (see PITFALLS), so these are promises:
a stage writes a few hundred pages or images in one transaction of a few
statements, not a transaction per page or per image.
"""

from __future__ import annotations

import io

import pymupdf
import sqlalchemy as sa

from docqueue.db import session_scope
from docqueue.pipeline import STAGE_NAMES
from docqueue.queue import DocumentQueueService, run_outputs
from docqueue.storage import blob_store
from docqueue.worker import stage_runner, stage_work
from docqueue.worker.stage_runner import run_stage
from tests.support.factories import add_document, make_pdf
from tests.support.stages import job_for, process
from tests.support.statements import counting_statements

PARAGRAPH = " ".join(
    ["Each page carries a paragraph of ordinary prose, long enough that the chunks of the whole document"]
    + ["run past a hundred and need more than one statement to be written, as a real report's would."] * 7
)


def image_pdf(pages: int) -> bytes:
    """`pages` pages, each a paragraph and a small image of its own (no two alike)."""
    document = pymupdf.open()
    for number in range(pages):
        pixmap = pymupdf.Pixmap(pymupdf.csRGB, pymupdf.IRect(0, 0, 24, 24), False)
        pixmap.set_rect(pixmap.irect, (number % 256, number // 256, 200))
        pixmap.set_rect(pymupdf.IRect(0, 0, 1 + number % 24, 4), (255 - number % 256, 0, 0))
        page = document.new_page()
        page.insert_textbox(pymupdf.Rect(54, 54, 558, 400), f"Page {number + 1}. {PARAGRAPH}", fontsize=10)
        page.insert_image(pymupdf.Rect(72, 420, 272, 620), stream=pixmap.tobytes("png"))
    return document.tobytes(garbage=3, deflate=True)


def test_a_200_page_200_image_document_writes_each_stage_in_one_transaction(session, owner, monkeypatch):
    document_id = add_document(session, owner, image_pdf(200), filename="big.pdf")
    DocumentQueueService(session).admit_pending()
    session.commit()
    job_id = session.execute(sa.text("SELECT id FROM document_queue WHERE document_id = :d"), {"d": document_id})
    job_id = job_id.scalar()
    # The PDF work runs here rather than in the pool's processes, so that every statement is counted.
    monkeypatch.setattr(stage_work, "run_in_pdf_process", lambda function, *args, **_: function(*args))
    work = stage_runner.work
    with counting_statements(monkeypatch) as counter:

        def labelled_work(step, original):
            counter.label = step.stage.name
            try:
                return work(step, original)
            finally:
                counter.label = "queue"

        monkeypatch.setattr(stage_runner, "work", labelled_work)
        assert run_stage("inspect", job_id) == "done"

    counts = {label: (counter.statements[label], counter.commits[label]) for label in counter.statements}
    status = session.execute(sa.text("SELECT status FROM documents WHERE id = :d"), {"d": document_id}).scalar()
    assert status == "completed"
    images = session.execute(sa.text("SELECT count(*) FROM document_images WHERE job_id = :j"), {"j": job_id})
    assert images.scalar() == 200
    chunks = session.execute(sa.text("SELECT count(*) FROM document_chunks WHERE job_id = :j"), {"j": job_id})
    assert chunks.scalar() > 100, "a long report's worth of chunks"
    # Each stage: one transaction (the lease with the units, its rows in one INSERT, the images' bytes in one
    # COPY; the checkpoint comes with the claim); chunk also reads the pages through a cursor of its own.
    for stage in ("extract_text", "extract_images", "chunk"):
        statements, commits = counts[stage]
        assert statements <= 3 and commits <= 2, f"{stage}: {counts}"
    # The whole run, queue transitions included: 31 in process when written (22 of them the queue's).
    assert sum(counter.statements.values()) <= 40, counts


def test_retiring_older_runs_is_one_statement_and_keeps_only_the_completing_runs_outputs(session, owner):
    document_id = add_document(session, owner, make_pdf(["one"]))
    first_run = job_for(session, document_id).id
    assert process(session, document_id).status == "completed"
    second_run = DocumentQueueService(session).enqueue(document_id, STAGE_NAMES, "reprocess")
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
