"""Stage `ocr`: read by Tesseract exactly the pages with no text layer (all pages of an uploaded image).

The pages are split evenly into contiguous ranges that run at once, one
per PDF pool process: as many ranges as the pool has processes (or a
multiple of that), each of at most OCR_RANGE_PAGES pages, so a 6-page scan
on two processes is read 3 + 3 and a 20-page one 5 + 5 + 5 + 5, never 8 + 8
+ 4 with a process idle at the end. Each page is turned upright and read by
a one-thread Tesseract with the owner's `ocr_timeout_seconds` per page.
Batches commit as they are read; a retried attempt reads only the pages
still without text (whichever range they fell in before), split afresh.
The document's `ocr_status`, `ocr_error` and `ocr_completed_at` follow. An
owner with background OCR off gets the stage skipped, and can ask for it
later (operation `ocr`).
"""

from __future__ import annotations

import math

from sqlalchemy import text
from sqlalchemy.orm import Session

from docqueue.db import session_scope
from docqueue.documents import pages_awaiting_ocr, record_ocr_status
from docqueue.errors import StageError
from docqueue.ocr.pages import read_page_range
from docqueue.pdf_pool import run_in_pdf_processes
from docqueue.queue import Claim, DocumentQueueService, LeaseLost
from docqueue.settings import get_settings
from docqueue.stages.stage import Stage

NOTHING_TO_READ = "every page has a text layer: nothing for OCR to read"
BACKGROUND_OCR_OFF = (
    "background OCR is off for this account: start OCR from the document's page or POST /api/documents/<id>/ocr"
)


def skip_if(session: Session, claim: Claim) -> str | None:
    """Why OCR should not run for this claim, or None."""
    needed = pages_awaiting_ocr(session, claim.job_id)[1]
    if not needed:
        return NOTHING_TO_READ
    enabled = session.execute(
        text("SELECT enable_background_ocr FROM users WHERE id = :owner_id"), {"owner_id": claim.owner_id}
    ).scalar()
    if not enabled and claim.operation != "ocr":
        return BACKGROUND_OCR_OFF
    return None


def _set_ocr_status(claim: Claim, status: str, error: str | None = None) -> None:
    with session_scope() as session:
        DocumentQueueService(session).hold_lease(claim)
        record_ocr_status(session, claim.document_id, status, error)


def _ranges(pages: list[int], most: int, processes: int) -> list[list[int]]:
    """`pages` in contiguous ranges of even sizes (differing by one at most), none over `most` pages, as many as
    `processes` or a multiple of it when there are pages enough: every process gets the same share of work."""
    if not pages:
        return []
    count = min(len(pages), math.ceil(math.ceil(len(pages) / most) / processes) * processes)
    size, larger = divmod(len(pages), count)
    ranges, start = [], 0
    for index in range(count):
        end = start + size + (index < larger)
        ranges.append(pages[start:end])
        start = end
    return ranges


def run(path: str, claim: Claim) -> int:
    """Read the pages awaiting OCR, ranges in parallel across the PDF pool; return how many were read."""
    with session_scope() as session:
        awaiting, needed = pages_awaiting_ocr(session, claim.job_id)
        detected_type = session.execute(
            text("SELECT detected_type FROM documents WHERE id = :id"), {"id": claim.document_id}
        ).scalar()
    _set_ocr_status(claim, "processing")
    settings = get_settings()
    ranges = _ranges(awaiting, settings.ocr_range_pages, settings.pdf_worker_processes)
    # Two Tesseract runs a page (orientation, then reading), each within the per-page limit; then a margin.
    timeout = max(len(pages) for pages in ranges) * 2 * claim.timeout_seconds + 60 if ranges else 60
    try:
        run_in_pdf_processes(
            read_page_range, [(path, detected_type, claim, pages, needed) for pages in ranges], timeout=timeout
        )
    except LeaseLost:
        raise
    except Exception as error:
        reason = str(error) if isinstance(error, StageError) else "OCR failed because of an internal error"
        try:
            _set_ocr_status(claim, "failed", reason)
        except LeaseLost:
            pass  # another attempt owns the document now and keeps its status
        raise
    return len(awaiting)


def record(session: Session, claim: Claim, pages_read: int) -> None:
    record_ocr_status(session, claim.document_id, "completed")


STAGE = Stage(
    name="ocr",
    description="read the pages with no text layer with Tesseract, page ranges in parallel, pages turned upright",
    run=run,
    record=record,
    weight=40,
    skip_if=skip_if,
    in_worker_thread=True,
)
