"""What the chaos suite shares: its documents and their clean output, its timings, and the checks.

The machine's shared Postgres and Redis are never restarted: a test that
restarts a server starts a private one (`tests.support.private_servers`).
"""

from __future__ import annotations

import io
import os
import time

import sqlalchemy as sa

from tests.support.chaos_clean_run import ChaosDocument, digest
from tests.support.hostile_files import make_long_pdf
from tests.support.processes import CORPUS, wait_until

#: Documents per scenario: modest in CI; `python bench/chaos.py N` sets more.
N_DOCUMENTS = int(os.environ.get("CHAOS_DOCUMENTS", "12"))
#: Long variants (each waits out 30 s or more) run only from the bench script.
LONG_VARIANTS = os.environ.get("CHAOS_LONG") == "1"
#: Seconds between a deploy's SIGTERM and its SIGKILL: a PaaS's 30 in the bench; in CI 5, still past the
#: moment a stage hands its item back, with the worker's shutdown (up to 25 s) cut short.
SIGKILL_GRACE_SECONDS = 30 if LONG_VARIANTS else 5

#: Heartbeats, ticks and redispatch short enough that recovery fits a test.
CHAOS_ENV = {
    "HEARTBEAT_INTERVAL_SECONDS": "1",
    "HEARTBEAT_TIMEOUT_SECONDS": "4",
    "DISPATCH_INTERVAL_SECONDS": "1",
    "REDISPATCH_AFTER_SECONDS": "4",
    "RETRY_BACKOFF_SECONDS": "1",
    "MAX_ATTEMPTS": "10",
    # Twelve slots for the worker's four threads: admission puts three of the owner's jobs in a message
    # (`dispatch.dispatcher.jobs_per_message`), so faults land in batches too, before and during their turns.
    "OCR_CONCURRENT_JOBS": "12",
    # The two long documents (8 pages) run stage by stage, so a fault lands mid-stage in extract_text as the
    # tests intend; the corpus files (most of at most 4 pages) take the small document's one pass: both paths
    # are broken on purpose.
    "SMALL_DOCUMENT_MAX_PAGES": "4",
}


_documents: list[ChaosDocument] = []


def chaos_documents() -> list[ChaosDocument]:
    """N documents: two long multi-page ones (several seconds of extraction each, on a fast machine too), then corpus
    PDFs."""
    if not _documents:
        sources = [(f"long-{n}.pdf", make_long_pdf(8, 250_000)) for n in range(2)]
        corpus = sorted((CORPUS / "pdf").glob("*.pdf"))
        for index in range(N_DOCUMENTS - len(sources)):
            path = corpus[index % len(corpus)]
            sources.append((f"{index:04d}-{path.name}", path.read_bytes()))
        _documents.extend(ChaosDocument.of(name, data) for name, data in sources)
    return _documents


def submit_all(owner_id: int, documents: list[ChaosDocument]) -> dict[int, ChaosDocument]:
    """Upload each document through the domain command the API uses; id -> document."""
    from docqueue import commands
    from docqueue.db import session_scope

    uploaded = {}
    for document in documents:
        with session_scope() as session:
            stored = commands.submit(session, owner_id, document.name, "application/pdf", io.BytesIO(document.data))
            uploaded[stored.id] = document
    return uploaded


def all_finished(engine, ids) -> bool:
    with engine.connect() as connection:
        unfinished = connection.execute(
            sa.text("SELECT count(*) FROM documents WHERE id = ANY(:ids) AND status NOT IN ('completed', 'failed')"),
            {"ids": list(ids)},
        ).scalar()
    return unfinished == 0


def unfinished_jobs(engine, ids) -> str:
    """The queue rows of the documents not finished yet, for a failure message."""
    with engine.connect() as connection:
        rows = connection.execute(
            sa.text(
                "SELECT q.id, q.document_id, q.status, q.stage, q.attempts, q.worker_id, q.run_after - now() AS wait,"
                " q.lease_expires_at - now() AS lease, q.dispatched_at, q.error_message FROM document_queue q"
                " JOIN documents d ON d.id = q.document_id"
                " WHERE d.id = ANY(:ids) AND d.status NOT IN ('completed', 'failed') ORDER BY q.id"
            ),
            {"ids": list(ids)},
        ).all()
    return "; ".join(str(tuple(row)) for row in rows)


def wait_all_finished(engine, ids, started: float, what: str, timeout: float = 240) -> float:
    """Wait until every document has finished; print and return the seconds since `started`."""
    wait_until(
        lambda: all_finished(engine, ids),
        timeout=timeout,
        interval=0.5,
        message=lambda: f"every document to finish ({what}); unfinished: {unfinished_jobs(engine, ids)}",
    )
    took = time.monotonic() - started
    print(f"\n[chaos] {what}: every document finished {took:.1f} s after the fault")
    return took


def in_flight_job(engine, stage: str | None = None, long_only: bool = False):
    """A job being processed now (optionally at `stage`, of a long document): (job id, worker id) or None."""
    with engine.connect() as connection:
        return connection.execute(
            sa.text(
                """
                SELECT q.id, q.worker_id FROM document_queue q JOIN documents d ON d.id = q.document_id
                WHERE q.status = 'processing' AND (CAST(:stage AS text) IS NULL OR q.stage = :stage)
                  AND (NOT :long_only OR d.filename LIKE 'long-%%')
                ORDER BY q.id LIMIT 1
                """
            ),
            {"stage": stage, "long_only": long_only},
        ).first()


def assert_processed_once(engine, uploaded: dict[int, ChaosDocument]) -> None:
    """Every document completed exactly once, its pages, chunks and images those of a clean run, nothing left stuck."""
    ids = list(uploaded)
    with engine.connect() as connection:
        documents = {
            row.id: row
            for row in connection.execute(
                sa.text("SELECT id, status, error, page_count FROM documents WHERE id = ANY(:ids)"), {"ids": ids}
            )
        }
        jobs = connection.execute(
            sa.text("SELECT document_id, status FROM document_queue WHERE document_id = ANY(:ids)"), {"ids": ids}
        ).all()
        pages = connection.execute(
            sa.text(
                "SELECT document_id, page_number, text FROM document_pages WHERE document_id = ANY(:ids) "
                "ORDER BY document_id, page_number"
            ),
            {"ids": ids},
        ).all()
        chunks = connection.execute(
            sa.text(
                "SELECT document_id, seq, page_start, page_end, text FROM document_chunks "
                "WHERE document_id = ANY(:ids) ORDER BY document_id, seq"
            ),
            {"ids": ids},
        ).all()
        images = connection.execute(
            sa.text(
                "SELECT document_id, xref, page_number, sha256 FROM document_images WHERE document_id = ANY(:ids) "
                "ORDER BY document_id, xref"
            ),
            {"ids": ids},
        ).all()
        successes = connection.execute(
            sa.text(
                "SELECT document_id, stage, count(*) FROM stage_attempts WHERE document_id = ANY(:ids) "
                "AND outcome = 'succeeded' GROUP BY document_id, stage"
            ),
            {"ids": ids},
        ).all()
        records = connection.execute(
            sa.text("SELECT document_id, stage, status FROM document_stage_records WHERE document_id = ANY(:ids)"),
            {"ids": ids},
        ).all()
        stuck = connection.execute(
            sa.text("SELECT count(*) FROM document_queue WHERE status IN ('pending', 'queued', 'processing')")
        ).scalar()
        running_attempts = connection.execute(
            sa.text("SELECT count(*) FROM stage_attempts WHERE outcome = 'running'")
        ).scalar()
    for document_id, document in uploaded.items():
        row = documents[document_id]
        assert (row.status, row.error) == ("completed", None), (document.name, row)
        assert row.page_count == len(document.page_digests), document.name
    assert sorted(job.document_id for job in jobs) == sorted(ids), "one queue item per document"
    assert {job.status for job in jobs} == {"completed"}
    stored: dict[int, list[tuple[int, str]]] = {}
    for page in pages:
        stored.setdefault(page.document_id, []).append((page.page_number, digest(page.text)))
    stored_chunks: dict[int, list[tuple]] = {}
    for chunk in chunks:
        stored_chunks.setdefault(chunk.document_id, []).append(
            (chunk.seq, chunk.page_start, chunk.page_end, digest(chunk.text))
        )
    stored_images: dict[int, list[tuple]] = {}
    for image in images:
        stored_images.setdefault(image.document_id, []).append((image.xref, image.page_number, image.sha256))
    for document_id, document in uploaded.items():
        expected = list(enumerate(document.page_digests, start=1))
        assert stored.get(document_id) == expected, f"{document.name}: pages differ from a clean run's"
        assert stored_chunks.get(document_id, []) == list(document.chunk_digests), f"{document.name}: chunks differ"
        assert stored_images.get(document_id, []) == list(document.image_digests), f"{document.name}: images differ"
    assert {count for _, _, count in successes} == {1}, "each stage of each document published exactly once"
    assert {status for _, _, status in records} <= {"completed", "skipped"}, "every stage ran or had nothing to do"
    ran = {(document_id, stage) for document_id, stage, status in records if status == "completed"}
    assert {(document_id, stage) for document_id, stage, _ in successes} == ran, "every stage that ran published"
    assert (stuck, running_attempts) == (0, 0), "nothing left stuck"


def start(procfile, name: str, **extra):
    """A Procfile process with the chaos timings: fast heartbeats, re-sends and retries, so recovery fits a test."""
    return procfile(name, **CHAOS_ENV, **extra)
