"""Stage `searchable_pdf`: the original with an invisible text layer on the pages OCR read.

Each OCR'd page is turned as OCR found it upright, and its words are
written where Tesseract saw them in render mode 3 (invisible), so viewers
show the scan and search, select and copy its words. Uploaded images
become a PDF of their pages. The file is stored as a blob of the run
(`searchable_pdf_key`), served from the run a reader sees.
"""

from __future__ import annotations

import os

from sqlalchemy import text
from sqlalchemy.orm import Session

from docqueue.db import session_scope
from docqueue.documents import detected_type
from docqueue.jobs import Claim
from docqueue.ocr.pages import open_as_pdf
from docqueue.queue.run_outputs import run_blob_prefix
from docqueue.stages.checkpoints import committing_batch
from docqueue.stages.stage import Stage
from docqueue.storage import blob_store

NO_OCR_PAGES = "no page was read by OCR: the original is as searchable as it gets"
#: The font of the invisible words: a base-14 font, so nothing is embedded.
FONT = "helv"


def searchable_pdf_key(document_id: int, job_id: int) -> str:
    """The blob key of run `job_id`'s searchable PDF."""
    return run_blob_prefix(document_id, job_id) + "searchable.pdf"


def skip_if(session: Session, claim: Claim) -> str | None:
    read = session.execute(
        text("SELECT 1 FROM document_pages WHERE job_id = :job_id AND ocr LIMIT 1"), {"job_id": claim.job_id}
    ).first()
    return None if read else NO_OCR_PAGES


def _ocr_pages(claim: Claim) -> list[tuple[int, list, int]]:
    with session_scope() as session:
        rows = session.execute(
            text(
                """
                SELECT page_number, ocr_words, ocr_rotation FROM document_pages
                WHERE job_id = :job_id AND ocr ORDER BY page_number
                """
            ),
            {"job_id": claim.job_id},
        )
        return [(number, words or [], rotation or 0) for number, words, rotation in rows]


def add_text_layer(page, words: list, rotation: int) -> None:
    """Turn `page` upright by `rotation` and write `words` ([x0, y0, x1, y1, word], upright points) invisibly."""
    import pymupdf

    if rotation:
        page.set_rotation((page.rotation + rotation) % 360)
    # Coordinates are of the page as shown; text goes in the page's own space, turned with the page.
    to_page = page.derotation_matrix
    font = pymupdf.Font(FONT)
    for x0, y0, x1, y1, word in words:
        width_at_one = font.text_length(word, fontsize=1)
        if not width_at_one:
            continue
        size = min(y1 - y0, (x1 - x0) / width_at_one)
        if size <= 0:
            continue
        page.insert_text(
            pymupdf.Point(x0, y1 - 0.2 * size) * to_page,
            word,
            fontsize=size,
            fontname=FONT,
            render_mode=3,
            rotate=page.rotation,
        )


def run(path: str, claim: Claim) -> int:
    """Write the searchable PDF and store it under the lease; return how many pages got a text layer."""
    pages = _ocr_pages(claim)
    with session_scope() as session:
        kind = detected_type(session, claim.document_id)
    target = os.path.join(os.path.dirname(path), "searchable.pdf")
    with open_as_pdf(path, kind) as document:
        for number, words, rotation in pages:
            add_text_layer(document.load_page(number - 1), words, rotation)
        document.save(target, garbage=3, deflate=True)
    with (
        committing_batch(claim, added=len(pages), total=len(pages), unit="pages", checkpoint=0) as session,
        open(target, "rb") as stream,
    ):
        blob_store(session).put(searchable_pdf_key(claim.document_id, claim.job_id), stream)
    return len(pages)


def record(session: Session, claim: Claim, pages: int) -> None:
    """Nothing beyond the blob: it is shown once the run completes."""


STAGE = Stage(
    name="searchable_pdf",
    description="write the original with an invisible text layer on its OCR'd pages",
    run=run,
    record=record,
    weight=5,
    skip_if=skip_if,
    optional=True,
)
