"""Stage time limits: a base per stage from the settings, scaled with the document's size, and enforced.

Stages in a PDF process are killed at their limit (tests/integration/test_stages.py);
here the stages that run in the worker process (chunk in the worker thread,
embed on the I/O lane) are stopped past theirs, through real worker
processes.
"""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa

from docqueue.db import get_engine
from docqueue.jobs import Claim
from docqueue.pipeline import PIPELINE, stage_named
from docqueue.settings import get_settings
from docqueue.stages.time_limits import base_time_limit, size_factor
from tests.support.factories import add_document, make_pdf
from tests.support.processes import wait_until
from tests.support.service_stub import ServiceStub, start_stub

MB = 1024 * 1024


@pytest.fixture
def limits(monkeypatch):
    for name, value in {
        "DISCOVERY_TIME_LIMIT_SECONDS": "300",
        "CHUNKING_TIME_LIMIT_SECONDS": "180",
        "IMAGE_TIME_LIMIT_SECONDS": "600",
        "EMBEDDING_TIME_LIMIT_SECONDS": "1200",
        "TIME_LIMIT_PAGES_PER_STEP": "200",
        "TIME_LIMIT_MB_PER_STEP": "50",
        "TIME_LIMIT_MAX_FACTOR": "10",
    }.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    yield
    monkeypatch.undo()
    get_settings.cache_clear()


def claim(timeout_seconds: int = 45) -> Claim:
    return Claim(1, 1, 1, "process", "inspect", 1, 3, "token", timeout_seconds, 1 * MB, None, 0)


@pytest.mark.parametrize(
    "size, pages, factor",
    [
        (1 * MB, None, 1),
        (1 * MB, 199, 1),
        (1 * MB, 200, 2),
        (1 * MB, 1000, 6),
        (120 * MB, 10, 3),
        (120 * MB, 1000, 6),
        (1 * MB, 10_000, 10),
    ],
)
def test_bigger_documents_get_proportionally_longer_up_to_a_cap(limits, size, pages, factor):
    assert size_factor(size, pages) == factor


def test_discovery_stages_take_their_base_from_the_setting(limits, monkeypatch):
    assert base_time_limit(stage_named("inspect"), claim()) == 300
    monkeypatch.setenv("DISCOVERY_TIME_LIMIT_SECONDS", "7")
    get_settings.cache_clear()
    assert base_time_limit(stage_named("extract_text"), claim()) == 7


@pytest.mark.parametrize(
    "stage, base",
    [("chunk", 180), ("extract_images", 600), ("embed", 1200), ("enrich", 1200), ("searchable_pdf", 45)],
)
def test_each_stage_takes_its_base_from_its_setting(limits, stage, base):
    assert base_time_limit(stage_named(stage), claim(timeout_seconds=45)) == base


def test_only_ocr_limits_its_own_time():
    # OCR gives each page the owner's ocr_timeout_seconds; a stage-wide limit would cut long scans short.
    assert [stage.name for stage in PIPELINE if stage.limits_own_time] == ["ocr"]


def finished_document(session, document_id: int) -> sa.Row:
    def finished():
        session.rollback()  # see the worker's commits
        row = session.execute(sa.text("SELECT status, error FROM documents WHERE id = :d"), {"d": document_id}).one()
        return row if row.status in ("completed", "failed") else None

    return wait_until(finished, timeout=120, message="the document to finish")


def attempts_at(session, document_id: int, stage: str) -> list[str]:
    """The outcomes of the stage's attempts, in order."""
    return list(
        session.scalars(
            sa.text("SELECT outcome FROM stage_attempts WHERE document_id = :d AND stage = :s ORDER BY id"),
            {"d": document_id, "s": stage},
        )
    )


def stage_failure(session, document_id: int, stage: str) -> str | None:
    """The error of the document's record of `stage`, which must be failed."""
    status, error = session.execute(
        sa.text("SELECT status, error FROM document_stage_records WHERE document_id = :d AND stage = :s"),
        {"d": document_id, "s": stage},
    ).one()
    assert status == "failed", (stage, status, error)
    return error


def test_chunking_past_its_limit_stops_before_its_batch_commits(procfile, session, make_user):
    owner, _ = make_user()

    def chunk_write_waiting():
        session.rollback()  # a fresh view of pg_stat_activity
        return session.execute(
            sa.text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND query LIKE 'INSERT INTO document_chunks%'"
            )
        ).scalar()

    with get_engine().connect() as blocker:
        # Chunking's first write waits here: a stage stuck in a call no thread can interrupt.
        blocker.execute(sa.text("LOCK TABLE document_chunks IN ACCESS EXCLUSIVE MODE"))
        document_id = add_document(session, owner, make_pdf(["words to chunk " * 20]))
        procfile("worker", CHUNKING_TIME_LIMIT_SECONDS=1)
        procfile("clock")
        wait_until(chunk_write_waiting, timeout=120, message="chunking to write its first batch")
        time.sleep(2)  # past the 1 s limit while the write waits
        blocker.rollback()

    document = finished_document(session, document_id)
    # Chunking is optional: the document completes with its text, the stage failed with its reason.
    assert (document.status, document.error) == ("completed", None)
    assert stage_failure(session, document_id, "chunk") == "chunk stopped after the 1 s time limit"
    chunks = session.execute(sa.text("SELECT count(*) FROM document_chunks WHERE document_id = :d"), {"d": document_id})
    assert chunks.scalar() == 0, "the batch written past the limit was rolled back"
    assert attempts_at(session, document_id, "chunk") == ["failed"], "permanent: not retried"


@pytest.fixture
def slow_service():
    service = ServiceStub(delay=3)
    url, server = start_stub(service)
    service.url = url
    yield service
    server.shutdown()


def test_embedding_past_its_limit_stops_and_stores_no_vector(procfile, session, make_user, slow_service):
    owner, _ = make_user()
    document_id = add_document(session, owner, make_pdf(["words to embed " * 20, "more words " * 20]))
    procfile(
        "worker",
        EMBEDDINGS_PROVIDER="openai",
        EMBEDDINGS_BASE_URL=slow_service.url + "/v1",
        EMBEDDINGS_API_KEY="test-key",
        EMBEDDINGS_MODEL="stub-embed",
        EMBEDDING_TIME_LIMIT_SECONDS=1,
    )
    procfile("clock")

    document = finished_document(session, document_id)
    assert (document.status, document.error) == ("completed", None)
    assert stage_failure(session, document_id, "embed") == "embed stopped after the 1 s time limit"
    assert slow_service.requests, "the premise: the stage asked the service, which answered after the limit"
    vectors = session.execute(
        sa.text("SELECT count(*) FROM document_chunks WHERE document_id = :d AND embedding IS NOT NULL"),
        {"d": document_id},
    )
    assert vectors.scalar() == 0, "nothing was published past the limit"
    assert attempts_at(session, document_id, "embed") == ["failed"], "permanent: not retried"
