"""A small document's one pass (`docqueue/worker/one_pass.py`): the same outputs as stage by stage, in one
PDF-process call and one publishing transaction."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from docqueue.queue import DocumentQueueService
from docqueue.worker import stage_work
from docqueue.worker.stage_runner import run_stage
from tests.support.factories import add_document, make_pdf
from tests.support.processes import CORPUS
from tests.support.stages import job_for, process
from tests.support.statements import counting_statements


def outputs(session, document_id: int) -> dict:
    """What a reader of the document sees: its fields, pages, images, chunks and stage records."""

    def rows(sql: str) -> list[tuple]:
        return [tuple(row) for row in session.execute(sa.text(sql), {"d": document_id})]

    job = "(SELECT results_job_id FROM documents WHERE id = :d)"
    return {
        "document": rows(
            "SELECT status, progress, page_count, detected_type, ocr_status, text_truncated_pages, budget_cuts, error "
            "FROM documents WHERE id = :d"
        ),
        "pages": rows(
            f"SELECT page_number, text, char_count, text_cut, note, ocr FROM document_pages WHERE job_id = {job}"
        ),
        "images": rows(
            "SELECT xref, page_number, sha256, width, height, format, size_bytes, skipped_reason FROM document_images "
            f"WHERE job_id = {job} ORDER BY xref"
        ),
        "chunks": rows(
            f"SELECT seq, text, page_start, page_end FROM document_chunks WHERE job_id = {job} ORDER BY seq"
        ),
        "records": rows(
            "SELECT stage, status, error, unit, units_done, units_total, attempts FROM document_stage_records "
            f"WHERE job_id = {job} ORDER BY position"
        ),
    }


def attempts(session, document_id: int) -> list[tuple[str, int, str]]:
    """(stage, attempt, outcome) of every attempt at the document, in pipeline order: what its history shows."""
    rows = session.execute(
        sa.text(
            "SELECT a.stage, a.attempt, a.outcome FROM stage_attempts a JOIN document_stage_records r "
            "ON r.job_id = a.job_id AND r.stage = a.stage WHERE a.document_id = :d ORDER BY r.position, a.id"
        ),
        {"d": document_id},
    )
    return [tuple(row) for row in rows]


@pytest.fixture
def pdf_calls(monkeypatch) -> list[str]:
    """The functions handed to a PDF process, in order (run here instead, so that they can be listed)."""
    calls: list[str] = []

    def run_here(function, *args, **_):
        calls.append(f"{function.__module__.rsplit('.', 1)[-1]}.{function.__name__}")
        return function(*args)

    monkeypatch.setattr(stage_work, "run_in_pdf_process", run_here)
    return calls


@pytest.mark.parametrize("name", ["pdflatex-image.pdf", "multicolumn.pdf", "imagemagick-images.pdf"])
def test_a_small_document_leaves_what_stage_by_stage_leaves(session, owner, ai_settings, name):
    data = (CORPUS / "pdf" / name).read_bytes()
    ai_settings(SMALL_DOCUMENT_MAX_BYTES=0)
    stage_by_stage = add_document(session, owner, data, filename=name)
    process(session, stage_by_stage)
    ai_settings(SMALL_DOCUMENT_MAX_BYTES=len(data))
    one_pass = add_document(session, owner, data, filename=name)
    process(session, one_pass)

    assert outputs(session, one_pass) == outputs(session, stage_by_stage)
    assert outputs(session, one_pass)["document"][0][0] == "completed"
    # Every stage that ran has its succeeded attempt in the history, whichever way it ran.
    assert attempts(session, one_pass) == attempts(session, stage_by_stage)
    assert {outcome for _, _, outcome in attempts(session, one_pass)} == {"succeeded"}


def test_a_small_document_is_one_claim_one_pdf_call_and_one_publish(session, owner, monkeypatch, ai_settings):
    data = (CORPUS / "pdf" / "pdflatex-image.pdf").read_bytes()
    calls = []
    # The PDF work runs here rather than in the pool's processes, so that every statement is counted.
    monkeypatch.setattr(
        stage_work, "run_in_pdf_process", lambda function, *args, **_: calls.append(function) or function(*args)
    )

    def run_counted() -> tuple[int, int]:
        document_id = add_document(session, owner, data)
        DocumentQueueService(session).admit_pending()
        session.commit()
        calls.clear()
        with counting_statements(monkeypatch) as counter:
            assert run_stage("inspect", job_for(session, document_id).id) == "done"
        status = session.execute(sa.text("SELECT status FROM documents WHERE id = :d"), {"d": document_id}).scalar()
        assert status == "completed"
        return counter.statements["queue"], counter.commits["queue"]

    ai_settings(SMALL_DOCUMENT_MAX_BYTES=0)
    stage_by_stage = run_counted()
    assert len(calls) == 3, "inspect, extract_text and extract_images each call a PDF process"
    ai_settings(SMALL_DOCUMENT_MAX_BYTES=len(data))
    one_pass = run_counted()
    assert [function.__name__ for function in calls] == ["read_one_pass"]
    # When written: 23 statements in 5 transactions (the claim, the file, the publish of 14 statements, the
    # dispatcher's admission), against 34 in 12 stage by stage.
    assert one_pass[0] < stage_by_stage[0] and one_pass[1] <= 5 < stage_by_stage[1], (one_pass, stage_by_stage)


def test_over_the_page_limit_the_pass_ends_after_inspect(session, owner, ai_settings, pdf_calls):
    ai_settings(SMALL_DOCUMENT_MAX_PAGES=2)
    document_id = add_document(session, owner, make_pdf(["one", "two", "three"]))
    assert process(session, document_id).status == "completed"
    assert pdf_calls == ["one_pass.read_one_pass", "extract_text.run", "extract_images.run"]
    assert [stage for stage, _, _ in attempts(session, document_id)] == [
        "inspect",
        "extract_text",
        "extract_images",
        "chunk",
    ]


def test_a_retry_runs_the_stages_one_by_one(session, owner, pdf_calls):
    document_id = add_document(session, owner, make_pdf(["retried"]))
    DocumentQueueService(session).admit_pending()
    session.commit()
    job = job_for(session, document_id)
    # The first attempt was claimed and lost (its worker died): the clock gave the job back for a second one.
    session.execute(sa.text("UPDATE document_queue SET attempts = 1 WHERE id = :j"), {"j": job.id})
    session.commit()
    assert run_stage("inspect", job.id) == "done"
    assert process(session, document_id).status == "completed"
    assert pdf_calls == ["inspect.run", "extract_text.run", "extract_images.run"]


def test_a_finished_jobs_thread_goes_on_with_a_job_it_admitted(session, owner, ai_settings):
    ai_settings(WORKER_CHAIN_SECONDS=60, OCR_CONCURRENT_JOBS=2)
    documents = [add_document(session, owner, make_pdf([f"document {n}"])) for n in range(4)]
    DocumentQueueService(session).admit_pending()
    session.commit()
    # Two are admitted (their messages sent); the two others wait. Running the first one's message here, its
    # thread admits the next as each job completes, and claims it itself.
    assert run_stage("inspect", job_for(session, documents[0]).id) == "done"
    statuses = session.execute(
        sa.text("SELECT document_id, status FROM document_queue WHERE document_id = ANY(:d) ORDER BY document_id"),
        {"d": documents},
    ).all()
    assert [status for _, status in statuses] == ["completed", "queued", "completed", "completed"]
    claimed = session.execute(
        sa.text("SELECT count(DISTINCT lease_token) FROM stage_attempts WHERE document_id = ANY(:d)"),
        {"d": [documents[0], documents[2], documents[3]]},
    ).scalar()
    assert claimed == 3 * 4, "each job's stages were claimed and recorded as any other's"
