"""Stages on real and hostile files, run through `run_stage` with the real PDF process pool."""

from __future__ import annotations

import json

import pymupdf
import pytest
import sqlalchemy as sa

from docqueue.pipeline import STAGE_NAMES
from docqueue.queue import DocumentQueueService
from docqueue.results.pages import page_texts, result_pages
from docqueue.worker.stage_runner import run_stage
from tests.support.factories import add_document, make_pdf, make_tiff
from tests.support.hostile_files import make_busy_pdf
from tests.support.processes import CORPUS
from tests.support.stages import job_for, process


@pytest.mark.parametrize("name", ["pdflatex-4-pages.pdf", "imagemagick-images.pdf", "multicolumn.pdf"])
def test_real_pdfs_are_counted_and_extracted_page_by_page(session, owner, name):
    truth = json.loads((CORPUS / "truth.json").read_text())[name]
    document_id = add_document(session, owner, (CORPUS / "pdf" / name).read_bytes(), filename=name)
    document = process(session, document_id)
    assert (document.status, document.progress, document.page_count) == ("completed", 100, truth["pages"]), (
        document.error
    )
    assert document.detected_type == "pdf"
    pages = result_pages(session, document_id)
    assert [page.page_number for page in pages] == list(range(1, truth["pages"] + 1))
    assert sum(len(page.text) for page in pages if not page.ocr) == truth["text_chars"]
    # Exactly the pages without a text layer went to OCR.
    assert sum(1 for page in pages if page.ocr) == truth["pages_without_text"]
    assert document.ocr_status == ("completed" if truth["pages_without_text"] else "not_needed")


def encrypted_pdf(user_password: str) -> bytes:
    source = pymupdf.open(stream=make_pdf(["secret plans"]), filetype="pdf")
    return source.tobytes(encryption=pymupdf.PDF_ENCRYPT_AES_256, owner_pw="owner-pw", user_pw=user_password)


def png_bytes() -> bytes:
    return pymupdf.Pixmap(pymupdf.csRGB, pymupdf.IRect(0, 0, 40, 30), False).tobytes("png")


@pytest.mark.parametrize(
    "data, error",
    [
        (encrypted_pdf("user-pw"), "the PDF is protected by a password: upload a copy without one"),
        (b"%PDF-1.7\n" + bytes(range(256)) * 40, "the PDF file is damaged and cannot be opened"),
        (b"PK\x03\x04" + b"\x00" * 100, "unsupported file type (application/zip)"),
        (b"just some notes, not a document\n" * 10, "unsupported file type (unrecognised data)"),
    ],
    ids=["password", "corrupt", "zip", "text"],
)
def test_unprocessable_files_fail_at_once_with_a_specific_reason(session, owner, data, error):
    document_id = add_document(session, owner, data, filename="upload.pdf")
    document = process(session, document_id)
    assert document.status == "failed"
    assert document.error.startswith(error)
    job = job_for(session, document_id)
    assert (job.status, job.stage, job.attempts) == ("failed", "inspect", 1), "a bad file must not be retried"


def test_owner_password_only_pdf_is_readable(session, owner):
    document = process(session, add_document(session, owner, encrypted_pdf("")))
    assert (document.status, document.page_count) == ("completed", 1)


def test_truncated_pdf_ends_cleanly(session, owner):
    whole = (CORPUS / "pdf" / "pdflatex-4-pages.pdf").read_bytes()
    document_id = add_document(session, owner, whole[: len(whole) // 2])
    document = process(session, document_id)
    # MuPDF repairs what it can; here the page tree is gone, which must be reported, not retried.
    assert document.status == "failed"
    assert document.error == "the PDF file has no readable pages: it may be damaged or truncated"
    assert job_for(session, document_id).attempts == 1


def test_scans_are_documents_that_need_ocr(session, owner):
    image = pymupdf.Pixmap(pymupdf.csRGB, pymupdf.IRect(0, 0, 40, 30), False)
    for data, kind, pages in ((png_bytes(), "png", 1), (image.tobytes("jpg"), "jpeg", 1), (make_tiff(3), "tiff", 3)):
        # A misleading name: the type comes from the bytes.
        document = process(session, add_document(session, owner, data, filename="scan.pdf"))
        assert (document.status, document.detected_type, document.page_count) == ("completed", kind, pages)
        assert document.ocr_status == "completed"
        assert [page.ocr for page in result_pages(session, document.id)] == [True] * pages


def test_huge_document_streams_through(session, owner):
    pages = [f"page {n} of a very long report" for n in range(1, 3001)]
    document_id = add_document(session, owner, make_pdf(pages))
    document = process(session, document_id)
    assert (document.status, document.page_count) == ("completed", 3000)
    assert page_texts(session, document_id)[2999] == (3000, "page 3000 of a very long report")


def test_stage_over_its_time_limit_is_killed_and_not_retried(session, owner, monkeypatch):
    from docqueue.settings import get_settings

    monkeypatch.setenv("DISCOVERY_TIME_LIMIT_SECONDS", "1")
    get_settings.cache_clear()
    slow = add_document(session, owner, make_busy_pdf(4_000_000))
    document = process(session, slow)
    monkeypatch.undo()
    get_settings.cache_clear()
    assert document.status == "failed"
    assert document.error == "extract_text stopped after the 1 s time limit", "the error names the stage and the time"
    # The pool replaced the killed process: the next document still processes.
    assert process(session, add_document(session, owner)).status == "completed"


def test_reprocess_rewrites_pages_without_duplicates(session, owner):
    document_id = add_document(session, owner, make_pdf(["one", "two"]))
    process(session, document_id)
    DocumentQueueService(session).enqueue(document_id, STAGE_NAMES, "reprocess")
    session.commit()
    document = process(session, document_id)
    assert document.status == "completed"
    assert page_texts(session, document_id) == [(1, "one"), (2, "two")]
    jobs = session.execute(
        sa.text("SELECT operation, status FROM document_queue WHERE document_id = :d ORDER BY id"), {"d": document_id}
    ).all()
    assert [tuple(job) for job in jobs] == [("process", "completed"), ("reprocess", "completed")]


def test_duplicate_message_has_no_second_effect(session, owner):
    document_id = add_document(session, owner)
    process(session, document_id)
    job = job_for(session, document_id)
    # Redis redelivers an old message: the claim fails, nothing changes.
    before = session.execute(
        sa.text("SELECT updated_at, completed_at FROM documents WHERE id = :d"), {"d": document_id}
    ).one()
    assert run_stage("inspect", job.id) == "dropped"
    assert run_stage("extract_text", job.id) == "dropped"
    after = session.execute(
        sa.text("SELECT updated_at, completed_at FROM documents WHERE id = :d"), {"d": document_id}
    ).one()
    assert before == after
    assert job_for(session, document_id).status == "completed"


def test_text_with_nul_bytes_is_stored_without_them_in_one_attempt(session, owner):
    # A real pdfTeX thesis has NUL in its text layer; Postgres text cannot hold it.
    document_id = add_document(session, owner, make_pdf(["before\x00after", "clean"]))
    document = process(session, document_id)
    assert document.status == "completed", document.error
    assert page_texts(session, document_id) == [(1, "beforeafter"), (2, "clean")]
    assert job_for(session, document_id).attempts == 1
