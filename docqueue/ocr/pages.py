"""Reading pages by OCR, in a PDF pool process: render, turn upright, read, commit in batches.

Each call reads one range of pages; the OCR stage runs several ranges at
once across the pool. Every batch of pages commits with the stage's units
and checkpoint under the job's lease, so a retried attempt reads only the
pages no batch committed.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from docqueue.image_limits import check_page_images
from docqueue.jobs import Claim
from docqueue.ocr.tesseract import Word, detect_rotation, engines_loaded, read_words, text_of
from docqueue.results.pages import save_ocr_pages
from docqueue.settings import get_settings
from docqueue.stages.checkpoints import committing_batch
from docqueue.stages.inspect import open_document
from docqueue.text_cleaning import storable_text

if TYPE_CHECKING:
    import pymupdf

#: Pages per commit: each page takes seconds to read, so a small batch loses little to a crash.
OCR_BATCH_PAGES = 4
#: Mean confidence (0 to 100) of a reading kept without orientation detection; upright print reads at 90 or more.
UPRIGHT_CONFIDENCE = 70
#: Orientation needs far fewer pixels than reading: a quarter of the pixels of 300 dpi.
ORIENTATION_DPI = 150
#: Most pixels a page is rendered with for OCR (one byte each, grey): A0 at 200 dpi, a letter page at 1000.
MAX_RENDER_PIXELS = 100_000_000


def open_as_pdf(path: str, detected_type: str) -> pymupdf.Document:
    """The file as a PDF, images converted (pages can then be turned and given a text layer)."""
    import pymupdf

    document = open_document(path, detected_type)
    if detected_type == "pdf":
        return document
    with document:
        return pymupdf.open("pdf", document.convert_to_pdf())


def open_pages_as_pdf(path: str, detected_type: str, page_numbers: list[int]) -> tuple[pymupdf.Document, list[int]]:
    """The file's pages `page_numbers` (1-based) as a PDF, and where each one is in it (0-based).

    A PDF is opened as it is. Of an image (a multi-page TIFF), only those
    pages are converted: a range converting the whole file would cost each
    of a 10,000-frame TIFF's 1,250 ranges the whole conversion again.
    (PyMuPDF's `convert_to_pdf(from_page, to_page)` fails past the first
    page, so the pages are drawn into the new PDF as it draws them.)
    """
    import pymupdf
    from pymupdf import mupdf

    document = open_document(path, detected_type)
    if detected_type == "pdf":
        return document, [number - 1 for number in page_numbers]
    converted = pymupdf.open()
    target = mupdf.pdf_document_from_fz_document(converted.this)
    with document:
        for number in page_numbers:
            page = mupdf.fz_load_page(document.this, number - 1)
            mediabox = mupdf.fz_bound_page(page)
            device, resources, contents = mupdf.pdf_page_write(target, mediabox)
            mupdf.fz_run_page(page, device, mupdf.FzMatrix(), mupdf.FzCookie())
            mupdf.fz_close_device(device)
            mupdf.pdf_insert_page(target, -1, mupdf.pdf_add_page(target, mediabox, 0, resources, contents))
    with converted:
        return pymupdf.open("pdf", converted.tobytes()), list(range(len(page_numbers)))


def _render_dpi(page: pymupdf.Page, detected_type: str, dpi: int, max_pixels: int = 0) -> int:
    """PDF pages render at `dpi`, an uploaded image at its own pixel size; never past `max_pixels`."""
    images = page.get_images() if detected_type != "pdf" else []
    if images:
        dpi = max(72, min(1200, round(72 * images[0][2] / page.rect.width)))
    # A huge page (a poster, or a hostile page size) is read at a lower resolution instead of exhausting memory.
    limit = int(72 * math.sqrt((max_pixels or MAX_RENDER_PIXELS) / max(page.rect.width * page.rect.height, 1)))
    return max(1, min(dpi, limit))


def looks_upright(words: list[Word]) -> bool:
    """Whether a reading can be kept as it is: Tesseract is sure of its words, and they run across the page.

    A page on its side or upside down reads as a few unsure words or as
    words standing on end (Tesseract finds some vertical lines by itself).
    """
    longer = [word for word in words if len(word.text) >= 3]
    if not longer:
        return False
    confidence = sum(word.confidence for word in longer) / len(longer)
    across = sum(word.width > word.height for word in longer) / len(longer)
    return confidence >= UPRIGHT_CONFIDENCE and across >= 0.5


def _read(page: pymupdf.Page, detected_type: str, timeout: float, what: str) -> tuple[list[Word], int]:
    """Render the page at the OCR resolution and read it: (its words, the dpi they are measured in)."""
    import pymupdf

    settings = get_settings()
    dpi = _render_dpi(page, detected_type, settings.ocr_dpi)
    image = page.get_pixmap(dpi=dpi, colorspace=pymupdf.csGRAY)
    return read_words(image, settings.ocr_languages, dpi, timeout, what), dpi


def _rotation(page: pymupdf.Page) -> int:
    """Degrees to turn the page clockwise to read it upright, by Tesseract's orientation detection."""
    import pymupdf

    dpi = _render_dpi(page, "pdf", ORIENTATION_DPI, MAX_RENDER_PIXELS // 4)
    return detect_rotation(page.get_pixmap(dpi=dpi, colorspace=pymupdf.csGRAY), dpi)


def read_page(page: pymupdf.Page, detected_type: str, timeout: float) -> tuple[str, list, int]:
    """OCR one page: (its text, its words as [x0, y0, x1, y1, word] in points of the upright page, rotation).

    The page is read as it lies first. Only a reading that does not look
    upright (most pages do) pays for orientation detection; a page found
    lying on its side or upside down is turned (in this in-memory copy
    only) and read again. A page showing an image over MAX_IMAGE_PIXELS is
    refused (ImageTooLarge) before anything is decoded.
    """
    what = f"page {page.number + 1}"
    check_page_images(page)
    words, dpi = _read(page, detected_type, timeout, what)
    rotation = 0 if looks_upright(words) else _rotation(page)
    if rotation:
        page.set_rotation((page.rotation + rotation) % 360)
        words, dpi = _read(page, detected_type, timeout, what)
    scale = 72 / dpi
    boxes = [
        [
            round(word.left * scale, 2),
            round(word.top * scale, 2),
            round((word.left + word.width) * scale, 2),
            round((word.top + word.height) * scale, 2),
            storable_text(word.text),
        ]
        for word in words
    ]
    return storable_text(text_of(words)), boxes, rotation


def read_page_range(path: str, detected_type: str, claim: Claim, page_numbers: list[int], total: int) -> int:
    """OCR the pages `page_numbers` (1-based) of the file and commit them in batches; return how many."""
    batch: list[dict] = []

    def commit() -> None:
        with committing_batch(
            claim, added=len(batch), total=total, unit="pages", checkpoint=max(row["page_number"] for row in batch)
        ) as session:
            save_ocr_pages(session, claim.job_id, batch)
        batch.clear()

    document, places = open_pages_as_pdf(path, detected_type, page_numbers)
    with document, engines_loaded():
        for number, place in zip(page_numbers, places):
            text, words, rotation = read_page(document.load_page(place), detected_type, claim.timeout_seconds)
            batch.append({"page_number": number, "text": text, "ocr_words": words, "ocr_rotation": rotation})
            if len(batch) == OCR_BATCH_PAGES:
                commit()
        if batch:
            commit()
    return len(page_numbers)
