"""Hostile files through the real stages and PDF pool: each ends with a correct result or a clear error,
and the next ordinary document still processes.

(Zero bytes, truncated, not-a-PDF, encrypted: `test_stages.py`. Pool errors, memory caps and pixel bombs:
`test_hostile_files.py`.)
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import psutil
import pymupdf
import pytest
import sqlalchemy as sa

from docqueue.results.pages import page_texts
from docqueue.runtime.pdf_processes import shutdown_pdf_pool
from tests.support.factories import add_document, make_pdf
from tests.support.hostile_files import milestone_pdf
from tests.support.processes import CORPUS
from tests.support.scans import jbig2_claiming
from tests.support.stages import job_for, process


def assert_others_unaffected(session, owner) -> None:
    document = process(session, add_document(session, owner, make_pdf(["an ordinary page"])))
    assert document.status == "completed"


def assert_clear_outcome(session, document_id: int, document) -> None:
    """Completed, or failed once with a reason fit for the uploader (never an internal error, never retried)."""
    if document.status == "failed":
        assert "internal error" not in document.error, document.error
        assert job_for(session, document_id).attempts == 1
    else:
        assert document.status == "completed"


def test_a_10000_page_pdf_completes_with_every_page(session, owner, make_user):
    # Background OCR off: the 9,990 blank pages are what is under test here, not Tesseract's hours on them.
    reader, _ = make_user(enable_background_ocr=False)
    document_id = add_document(session, reader, milestone_pdf(10_000, every=1000))
    document = process(session, document_id)
    assert (document.status, document.page_count, document.ocr_status) == ("completed", 10_000, "needed")
    stored = page_texts(session, document_id)
    assert len(stored) == 10_000
    assert [text for _, text in stored if text] == [
        "milestone 1000",
        "milestone 2000",
        "milestone 3000",
        "milestone 4000",
        "milestone 5000",
        "milestone 6000",
        "milestone 7000",
        "milestone 8000",
        "milestone 9000",
        "milestone 10000",
    ]
    assert_others_unaffected(session, owner)


def with_broken_xref(data: bytes) -> bytes:
    """The same PDF with every xref offset pointing nowhere and a wrong startxref."""
    head, found, _ = data.rpartition(b"startxref")
    assert found and b"\nxref\n" in head, "a classic xref table to break"
    return head.replace(b"0000000", b"9999999") + b"startxref\n123456789\n%%EOF\n"


def test_a_broken_xref_table_is_repaired_or_refused_clearly(session, owner):
    original = make_pdf(["first page text", "second page text"])
    document_id = add_document(session, owner, with_broken_xref(original))
    document = process(session, document_id)
    assert_clear_outcome(session, document_id, document)
    if document.status == "completed":
        assert page_texts(session, document_id) == [(1, "first page text"), (2, "second page text")]
    assert_others_unaffected(session, owner)


def pdf_with_javascript_and_attachment() -> bytes:
    document = pymupdf.open(stream=make_pdf(["invoice 42"]), filetype="pdf")
    document.embfile_add("payload.exe", b"MZ" + b"\x00" * 200, filename="payload.exe")
    action = document.get_new_xref()
    document.update_object(action, "<< /S /JavaScript /JS (app.alert('pwned'); this.exportDataObject({}); ) >>")
    document.xref_set_key(document.pdf_catalog(), "OpenAction", f"{action} 0 R")
    return document.tobytes()


def test_javascript_and_attachments_are_ignored_and_the_text_extracted(session, owner):
    for data in (pdf_with_javascript_and_attachment(), (CORPUS / "pdf" / "with-attachment.pdf").read_bytes()):
        document_id = add_document(session, owner, data)
        document = process(session, document_id)
        assert (document.status, document.page_count) == ("completed", 1)
    assert page_texts(session, document_id - 1) == [(1, "invoice 42")]
    assert_others_unaffected(session, owner)


def pdf_with_unmapped_font() -> bytes:
    """Text drawn in a font whose glyph names mean nothing and which has no ToUnicode map."""
    document = pymupdf.open(stream=make_pdf(["cannot be mapped to unicode"]), filetype="pdf")
    font_xref = document[0].get_fonts()[0][0]
    differences = " ".join(f"/g{code}" for code in range(32, 127))
    document.xref_set_key(font_xref, "Encoding", f"<< /Type /Encoding /Differences [32 {differences}] >>")
    document.xref_set_key(font_xref, "ToUnicode", "null")
    return document.tobytes()


def test_a_font_with_no_unicode_map_still_completes(session, owner):
    document_id = add_document(session, owner, pdf_with_unmapped_font())
    document = process(session, document_id)
    assert (document.status, document.page_count) == ("completed", 1)
    [(number, text)] = page_texts(session, document_id)
    assert number == 1 and "\x00" not in text, "whatever MuPDF reads is stored as Postgres can hold it"
    assert_others_unaffected(session, owner)


def pdf_with_nested_and_cyclic_objects() -> bytes:
    """Arrays nested 5,000 deep and two objects naming each other, on the page's dictionary.

    MuPDF refuses to write nesting past a few hundred levels, so the deep array
    is spliced into the written bytes (the xref offsets then need MuPDF's repair).
    """
    document = pymupdf.open(stream=make_pdf(["nested"]), filetype="pdf")
    page = document[0].xref
    document.xref_set_key(page, "Deep", "[[]]")
    first, second = document.get_new_xref(), document.get_new_xref()
    document.update_object(first, f"<< /Next {second} 0 R >>")
    document.update_object(second, f"<< /Next {first} 0 R >>")
    document.xref_set_key(page, "Loop", f"{first} 0 R")
    data = document.tobytes()
    assert data.count(b"[[]]") == 1
    return data.replace(b"[[]]", b"[" * 5000 + b"]" * 5000)


def pdf_with_cyclic_page_tree() -> bytes:
    """A page tree whose Kids point back at itself."""
    data = make_pdf(["cyclic"])
    document = pymupdf.open(stream=data, filetype="pdf")
    pages = int(document.xref_get_key(document.pdf_catalog(), "Pages")[1].split()[0])
    document.xref_set_key(pages, "Kids", f"[{pages} 0 R]")
    return document.tobytes()


@pytest.mark.parametrize(
    "make",
    [pdf_with_nested_and_cyclic_objects, pdf_with_cyclic_page_tree],
    ids=["nested-and-cyclic-objects", "cyclic-page-tree"],
)
def test_deeply_nested_and_cyclic_objects_end_clearly(session, owner, make):
    document_id = add_document(session, owner, make())
    document = process(session, document_id)
    assert_clear_outcome(session, document_id, document)
    assert_others_unaffected(session, owner)


def pdf_process_peaks_mb() -> list[int]:
    """The peak resident memory of each of this process's PDF pool processes, in MB."""
    peaks = []
    for child in psutil.Process().children(recursive=True):
        if "spawn_main" in " ".join(child.cmdline()):
            status = Path(f"/proc/{child.pid}/status").read_text()
            peaks.append(int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) // 1024)
    return peaks


@pytest.mark.parametrize(
    "dictionary", [None, (2000, 2000)], ids=["as-its-dictionary-says", "behind-a-small-dictionary"]
)
def test_a_huge_jbig2_page_fails_naming_its_size_before_it_is_decoded(session, owner, dictionary):
    # 60000 × 60000 pixels: a 450 MB bitmap, under the 1 GB cap of a PDF process, so only the peak shows it.
    bomb = jbig2_claiming(60_000, 60_000, dictionary)
    assert len(bomb) < 5_000
    shutdown_pdf_pool()  # fresh PDF processes: their peaks are this document's
    document_id = add_document(session, owner, bomb)
    document = process(session, document_id)
    assert (document.status, document.error) == (
        "failed",
        "an image on page 1 is 60000 × 60000 pixels (3,600 million), more than the 89 million allowed "
        "(MAX_IMAGE_PIXELS)",
    )
    assert job_for(session, document_id).attempts == 1
    peaks = pdf_process_peaks_mb()
    assert peaks and max(peaks) < 400, f"nothing the size of the bitmap was decoded: {peaks} MB"
    assert_others_unaffected(session, owner)


def test_a_file_over_the_upload_limit_is_refused_with_413_and_nothing_stored(app, make_user, session):
    _, token = make_user()
    app.config["MAX_CONTENT_LENGTH"] = 4096
    response = app.test_client().post(
        "/api/documents",
        data={"file": (io.BytesIO(b"%PDF-1.7\n" + b"0" * 10_000), "big.pdf")},
        headers={"Authorization": f"Bearer {token}"},
        content_type="multipart/form-data",
    )
    assert response.status_code == 413
    assert (
        response.get_json()["error"]
        == "the upload is larger than the 4096 byte limit (MAX_UPLOAD_MB); nothing was stored"
    )
    assert session.execute(sa.text("SELECT count(*) FROM documents")).scalar() == 0
