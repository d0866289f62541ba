"""Content bombs refused at `inspect`, before anything is drawn: forms nested too deep, or too many operations."""

from __future__ import annotations

import pymupdf
import pytest

from tests.support.factories import add_document
from tests.support.hostile_files import form_bomb
from tests.support.processes import CORPUS
from tests.support.stages import assert_plain, job_for, process


def self_drawing_form() -> bytes:
    """A PDF whose page draws a form that draws itself."""
    document = pymupdf.open()
    page = document.new_page()
    xref = document.get_new_xref()
    document.update_object(
        xref, f"<< /Type /XObject /Subtype /Form /BBox [0 0 100 100] /Resources << /XObject << /X {xref} 0 R >> >> >>"
    )
    document.update_stream(xref, b"0 0 1 1 re f /X Do")
    document.xref_set_key(page.xref, "Resources", f"<< /XObject << /X {xref} 0 R >> >>")
    contents = document.get_new_xref()
    document.update_object(contents, "<< >>")
    document.update_stream(contents, b"/X Do")
    document.xref_set_key(page.xref, "Contents", f"{contents} 0 R")
    return document.tobytes()


@pytest.fixture
def default_content_limits(test_env, monkeypatch):
    """The content limits at their defaults, in this process and in the PDF processes it starts."""
    from docqueue.runtime.pdf_processes import shutdown_pdf_pool
    from docqueue.settings import get_settings

    monkeypatch.delenv("MAX_CONTENT_OPERATORS", raising=False)
    monkeypatch.delenv("MAX_CONTENT_NESTING", raising=False)
    get_settings.cache_clear()
    shutdown_pdf_pool()
    yield get_settings()
    shutdown_pdf_pool()
    monkeypatch.undo()
    get_settings.cache_clear()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        # The file: 5 KB, both PDF processes busy for the whole 300 s limit.
        (form_bomb(25), "page 1 is too complex to read: forms inside forms nest more than 12 deep"),
        (self_drawing_form(), "page 1 is too complex to read: forms inside forms nest more than 12 deep"),
        # Within the nesting limit, 4**10 drawings are still far too many: about 12 million operations.
        (
            form_bomb(10),
            "page 1 is too complex to read: drawing it takes about 12,146,004 operations (at most 5,000,000)",
        ),
        # The limit grew tenfold with the page count; the refusal does not wait for any of it.
        (form_bomb(25, pages=1_800), "page 1 is too complex to read: forms inside forms nest more than 12 deep"),
    ],
    ids=["nested-25-deep", "draws-itself", "too-many-operations", "1800-pages"],
)
def test_a_content_bomb_fails_at_inspect_once_with_a_plain_reason(
    session, owner, default_content_limits, data, message
):
    assert len(data) < 1_000_000  # small files: the cost is in the drawing, not the bytes
    document_id = add_document(session, owner, data, filename="bomb.pdf")
    document = process(session, document_id)
    assert (document.status, document.error) == ("failed", message)
    job = job_for(session, document_id)
    # Refused by its own measure: never retried, and nothing was drawn (inspect is the first stage).
    assert (job.stage, job.failure_kind, job.attempts) == ("inspect", "permanent", 1)
    assert_plain(job.error_message)


def test_real_pdfs_and_a_modest_nesting_pass_the_content_limits(session, owner, default_content_limits):
    for name in ("google-doc-document.pdf", "libreoffice-form.pdf", "pdflatex-4-pages.pdf"):
        document = process(session, add_document(session, owner, (CORPUS / "pdf" / name).read_bytes(), filename=name))
        assert (document.status, document.error) == ("completed", None), name
    # Forms four deep, drawn 4**4 times: an ordinary page's worth of drawing.
    document = process(session, add_document(session, owner, form_bomb(5, text="nested but fine")))
    assert (document.status, document.error) == ("completed", None)
