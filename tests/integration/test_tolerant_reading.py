"""Real-world PDFs that bare readers open: a header after leading bytes, one broken page, one broken image.

Each costs only its broken piece, noted where the owner looks, never the
document. Stages run through `run_stage` in this process, in the real PDF pool.
"""

from __future__ import annotations

import sqlalchemy as sa

from tests.support.api import auth
from tests.support.factories import add_document
from tests.support.stages import settle
from tests.support.tolerant_pdfs import with_broken_content_stream, with_leading_bytes, with_missing_image_object


def test_a_header_after_leading_bytes_is_read_up_to_the_first_kilobyte(session, client, make_user):
    owner, token = make_user()
    # A header starting at byte 1,020 ends past byte 1,024: readers still accept it.
    for lead in (300, 1020):
        document_id = add_document(session, owner, with_leading_bytes(lead))
        job = settle(session, document_id)
        assert job.status == "completed", (lead, job.error_message)
        pages = client.get(f"/api/documents/{document_id}/pages", headers=auth(token)).json["pages"]
        assert pages[0]["text"] == "text after leading bytes", lead
    # Past the first kilobyte it is not a PDF by any reader's rule.
    document_id = add_document(session, owner, with_leading_bytes(1100))
    job = settle(session, document_id)
    assert job.status == "failed"
    assert job.error_message.startswith("unsupported file type (unrecognised data)")


def test_a_broken_content_stream_costs_its_page_not_the_document(session, client, make_user):
    owner, token = make_user()
    document_id = add_document(session, owner, with_broken_content_stream())
    job = settle(session, document_id)
    assert job.status == "completed", job.error_message
    pages = client.get(f"/api/documents/{document_id}/pages", headers=auth(token)).json["pages"]
    assert [page["text"] for page in pages] == ["page 1 reads fine", "", "page 3 reads fine"]
    note = "page 2 cannot be read: it exceeds a limit of the PDF reader; the page was skipped"
    assert [page["note"] for page in pages] == [None, note, None]
    detail = client.get(f"/api/documents/{document_id}", headers=auth(token)).json
    assert detail["warnings"] == [{"stage": "extract_text", "page": 2, "error": note}]
    # OCR would fail the same way on that page: it is not sent to OCR.
    assert detail["ocr_status"] == "not_needed"
    assert {s["stage"]: s["status"] for s in detail["stages"]}["ocr"] == "skipped"


def test_a_missing_image_object_costs_that_image_not_the_document(session, client, make_user):
    owner, token = make_user()
    document_id = add_document(session, owner, with_missing_image_object())
    job = settle(session, document_id)
    assert job.status == "completed", job.error_message
    detail = client.get(f"/api/documents/{document_id}", headers=auth(token)).json
    assert {s["stage"]: s["status"] for s in detail["stages"]}["extract_images"] == "completed"
    images = client.get(f"/api/documents/{document_id}/images", headers=auth(token)).json["images"]
    assert [(image["page"], image["url"] is not None) for image in images] == [(1, True), (2, False)]
    assert images[1]["skipped"] == "skipped: the image on page 2 cannot be read: its structure is damaged"
    stored = session.execute(
        sa.text("SELECT count(*) FROM document_images WHERE document_id = :d AND skipped_reason IS NULL"),
        {"d": document_id},
    ).scalar()
    assert stored == 1
