"""OCR and the searchable PDF on scans made in the test, through `run_stage`, the real PDF pool and tesseract."""

from __future__ import annotations

import io

import pymupdf
import pytest
import sqlalchemy as sa

from docqueue.ocr.range_reading import split_pages
from docqueue.stages.ocr import BACKGROUND_OCR_OFF
from docqueue.stages.searchable_pdf import NO_OCR_PAGES, searchable_pdf_key
from docqueue.storage import blob_store
from tests.support.factories import add_document
from tests.support.scans import (
    PARAGRAPHS,
    bare_tesseract_words,
    coverage,
    image_bytes,
    joined_pdf,
    scan_page,
    text_image,
    text_pdf_page,
    two_column_image,
    words,
)
from tests.support.stage_records import records
from tests.support.stages import job_for, process


def stored_pages(session, document_id: int) -> list[sa.Row]:
    return session.execute(
        sa.text(
            "SELECT p.* FROM document_pages p JOIN documents d ON d.results_job_id = p.job_id "
            "WHERE d.id = :d ORDER BY page_number"
        ),
        {"d": document_id},
    ).all()


def searchable_pdf(session, document_id: int) -> pymupdf.Document:
    job_id = session.execute(sa.text("SELECT results_job_id FROM documents WHERE id = :d"), {"d": document_id}).scalar()
    out = io.BytesIO()
    blob_store(session).download_to(searchable_pdf_key(document_id, job_id), out)
    return pymupdf.open(stream=out.getvalue(), filetype="pdf")


def test_scans_turned_skewed_ccitt_jbig2_and_two_column_come_back_upright_with_their_words(session, owner, tmp_path):
    images = [text_image(paragraph) for paragraph in PARAGRAPHS[:4]] + [two_column_image(*PARAGRAPHS[4:6])]
    images += [text_image(PARAGRAPHS[1]), text_image(PARAGRAPHS[2])]
    # Turned 270°, Tesseract reads the words standing on end without help: the page must still come back upright.
    variants = [{}, {"turn": 90}, {"skew": 3.0}, {"ccitt": True}, {}, {"jbig2": True}, {"turn": 270}]
    expected = [*PARAGRAPHS[:4], PARAGRAPHS[4] + " " + PARAGRAPHS[5], PARAGRAPHS[1], PARAGRAPHS[2]]
    data = joined_pdf([scan_page(image, **variant) for image, variant in zip(images, variants)])
    assert b"/CCITTFaxDecode" in data and b"/JBIG2Decode" in data
    document_id = add_document(session, owner, data, filename="scan.pdf")
    document = process(session, document_id)
    assert document.status == "completed", document.error
    assert (document.ocr_status, document.ocr_error) == ("completed", None)
    assert document.ocr_completed_at is not None

    pages = stored_pages(session, document_id)
    assert [page.ocr for page in pages] == [True] * 7
    # The turned pages were found lying on their sides and read upright.
    assert [page.ocr_rotation for page in pages] == [0, 90, 0, 0, 0, 0, 270]
    scan = pymupdf.open(stream=data, filetype="pdf")
    for page, image, variant in zip(pages, images, variants):
        # Bare tesseract on the same page as it is (the turned one: as it was before turning).
        if variant.get("turn"):
            bare = bare_tesseract_words(image, tmp_path)
        else:
            pixmap = scan.load_page(page.page_number - 1).get_pixmap(dpi=300, colorspace=pymupdf.csGRAY)
            bare = bare_tesseract_words(_image(pixmap), tmp_path)
        assert coverage(words(page.text), bare) >= 0.9, (variant, page.text)
        assert coverage(words(page.text), words(expected[page.page_number - 1])) >= 0.9, (variant, page.text)

    record = records(session, job_for(session, document_id).id)["ocr"]
    assert (record.status, record.unit, record.units_done, record.units_total) == ("completed", "pages", 7, 7)

    # The searchable PDF: the scan with the words as text, the turned page shown upright.
    searchable = searchable_pdf(session, document_id)
    assert searchable.page_count == 7
    assert (searchable.load_page(1).rotation, searchable.load_page(6).rotation) == (90, 270)
    for page in pages:
        layer = searchable.load_page(page.page_number - 1).get_text()
        assert coverage(words(layer), words(page.text)) >= 0.95, layer
        assert searchable.load_page(page.page_number - 1).get_images(), "the scan itself must still be there"


def _image(pixmap):
    from PIL import Image

    return Image.frombytes("L", (pixmap.width, pixmap.height), pixmap.samples)


def test_a_pdf_with_a_text_page_and_a_scanned_page_is_ocrd_on_the_scan_only(session, owner):
    data = joined_pdf([text_pdf_page(PARAGRAPHS[0]), scan_page(text_image(PARAGRAPHS[1]))])
    document_id = add_document(session, owner, data)
    document = process(session, document_id)
    assert document.status == "completed", document.error
    first, second = stored_pages(session, document_id)
    assert first.ocr is False and first.ocr_words is None
    assert words(first.text) == words(PARAGRAPHS[0]), "the text layer must be kept as it was"
    assert second.ocr is True
    assert coverage(words(second.text), words(PARAGRAPHS[1])) >= 0.9
    record = records(session, job_for(session, document_id).id)["ocr"]
    assert (record.units_done, record.units_total, record.checkpoint) == (1, 1, 2)


@pytest.mark.parametrize("kind, count", [("png", 1), ("tiff", 3)])
def test_uploaded_images_are_read_page_by_page(session, owner, kind, count):
    images = [text_image(paragraph) for paragraph in PARAGRAPHS[:count]]
    document_id = add_document(session, owner, image_bytes(images, kind), filename=f"scan.{kind}")
    document = process(session, document_id)
    assert (document.status, document.detected_type, document.page_count) == ("completed", kind, count)
    pages = stored_pages(session, document_id)
    for page in pages:
        assert page.ocr
        assert coverage(words(page.text), words(PARAGRAPHS[page.page_number - 1])) >= 0.9, page.text
    searchable = searchable_pdf(session, document_id)
    assert searchable.page_count == count
    assert coverage(words(searchable.load_page(0).get_text()), words(pages[0].text)) >= 0.95


def test_documents_with_text_everywhere_skip_ocr_and_say_why(session, owner):
    document_id = add_document(session, owner, text_pdf_page(PARAGRAPHS[0]))
    document = process(session, document_id)
    assert (document.status, document.ocr_status) == ("completed", "not_needed")
    recorded = records(session, job_for(session, document_id).id)
    assert recorded["ocr"].status == "skipped" and "nothing for OCR to read" in recorded["ocr"].error
    assert (recorded["searchable_pdf"].status, recorded["searchable_pdf"].error) == ("skipped", NO_OCR_PAGES)


def test_background_ocr_off_skips_it_until_the_owner_asks(session, make_user, client):
    owner, token = make_user(enable_background_ocr=False)
    document_id = add_document(session, owner, scan_page(text_image(PARAGRAPHS[2])))
    document = process(session, document_id)
    assert (document.status, document.ocr_status) == ("completed", "needed")
    record = records(session, job_for(session, document_id).id)["ocr"]
    assert (record.status, record.error) == ("skipped", BACKGROUND_OCR_OFF)
    assert stored_pages(session, document_id)[0].text == ""
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get(f"/api/documents/{document_id}/searchable.pdf", headers=headers).status_code == 404

    response = client.post(f"/api/documents/{document_id}/ocr", headers=headers)
    assert response.status_code == 202, response.json
    document = process(session, document_id)
    assert (document.status, document.ocr_status) == ("completed", "completed")
    page = stored_pages(session, document_id)[0]
    assert page.ocr and coverage(words(page.text), words(PARAGRAPHS[2])) >= 0.9
    pages = client.get(f"/api/documents/{document_id}/pages", headers=headers).json
    assert pages["complete"] is True and pages["pages"][0]["ocr"] is True
    download = client.get(f"/api/documents/{document_id}/searchable.pdf", headers=headers)
    assert (download.status_code, download.mimetype) == (200, "application/pdf")
    layer = pymupdf.open(stream=download.data, filetype="pdf").load_page(0).get_text()
    assert coverage(words(layer), words(page.text)) >= 0.95


def test_a_page_over_the_per_page_limit_has_its_tesseract_killed(session, make_user):
    owner, _ = make_user(ocr_timeout_seconds=1)
    # A page full of small print takes Tesseract well over a second on any machine this runs on.
    dense = " ".join(PARAGRAPHS * 5)
    document_id = add_document(session, owner, scan_page(text_image(dense, fontsize=9)))
    document = process(session, document_id)
    assert document.status == "failed"
    assert document.ocr_status == "failed"
    assert "per-page limit and was stopped" in document.ocr_error
    assert document.error.startswith("page 1")
    assert records(session, job_for(session, document_id).id)["ocr"].status == "failed"


@pytest.mark.parametrize(
    ("pages", "most", "processes", "sizes"),
    [
        (6, 8, 2, [3, 3]),  # a short scan keeps both processes busy
        (10, 8, 2, [5, 5]),  # not 8 + 2
        (20, 8, 2, [5, 5, 5, 5]),  # not 8 + 8 + 4: a multiple of the processes, each none over 8
        (17, 8, 2, [5, 4, 4, 4]),
        (16, 8, 2, [8, 8]),
        (1, 8, 2, [1]),
        (3, 8, 4, [1, 1, 1]),
        (0, 8, 2, []),
    ],
)
def test_a_scans_pages_are_split_evenly_over_the_pdf_processes(pages, most, processes, sizes):
    numbers = list(range(1, pages + 1))
    ranges = split_pages(numbers, most, processes)
    assert [len(pages) for pages in ranges] == sizes
    assert [number for pages in ranges for number in pages] == numbers, "contiguous, in order, each page once"


def test_missing_tesseract_models_fail_the_page_naming_the_folder(monkeypatch, tmp_path):
    from docqueue.ocr.tesseract import OcrError, read_words
    from docqueue.settings import get_settings

    monkeypatch.setenv("TESSDATA_PREFIX", str(tmp_path))
    get_settings.cache_clear()
    try:
        pixmap = pymupdf.Pixmap(pymupdf.csGRAY, pymupdf.IRect(0, 0, 100, 100), 0)
        with pytest.raises(OcrError, match=f"no data for a language in eng in {tmp_path}"):
            read_words(pixmap, "eng", 300, 10, "page 1")
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
