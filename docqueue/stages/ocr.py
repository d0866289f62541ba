"""Stage `ocr`: read by Tesseract exactly the pages with no text layer (all pages of an uploaded image).

The pages are split into ranges of at most OCR_RANGE_PAGES, offered to
every worker a few at a time (`docqueue/ocr/range_reading.py`): this worker reads them in
its PDF pool, one range per process, while any other worker with a free
thread takes one too. Each page is turned upright and read by a one-thread
Tesseract with the owner's `ocr_timeout_seconds` per page. Batches commit as
they are read; a retried attempt reads only the pages still without text. The whole
reading may take OCR_SECONDS_PER_PAGE a page (`ocr_budget`), then fails for good. The document's `ocr_status`, `ocr_error` and `ocr_completed_at`
follow. An owner with background OCR off gets the stage skipped, and can
ask for it later (operation `ocr`).
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from docqueue.db import session_scope
from docqueue.documents import detected_type, record_ocr_status
from docqueue.jobs import Claim, LeaseLost
from docqueue.ocr.range_messages import offer_ocr_ranges
from docqueue.ocr.range_reading import failure_reason, ocr_budget, read_ranges, split_pages
from docqueue.queue import DocumentQueueService, ocr_ranges
from docqueue.results.pages import pages_awaiting_ocr
from docqueue.runtime.pdf_pool import StageStopped
from docqueue.runtime.worker_shutdown import WorkerStopping
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


def run(path: str, claim: Claim) -> int:
    """Read the pages awaiting OCR, in ranges any worker may take; return how many were read.

    A few ranges are offered to other workers (as many as this worker's
    pool has processes: each reader offers the next on), and the reading
    may take OCR_SECONDS_PER_PAGE for each page still to read.
    """
    with session_scope() as session:
        awaiting, needed = pages_awaiting_ocr(session, claim.job_id)
        kind = detected_type(session, claim.document_id)
    settings = get_settings()
    with session_scope() as session:
        DocumentQueueService(session).hold_lease(claim)
        record_ocr_status(session, claim.document_id, "processing")
        range_ids = ocr_ranges.plan(
            session, claim, split_pages(awaiting, settings.ocr_range_pages, settings.pdf_worker_processes)
        )
    offer_ocr_ranges(claim.job_id, max(0, min(len(range_ids) - 1, settings.pdf_worker_processes)))
    try:
        read_ranges(claim, path, kind, needed, ocr_budget(len(awaiting)))
    except (LeaseLost, WorkerStopping, StageStopped):
        raise
    except Exception as error:
        try:
            _set_ocr_status(claim, "failed", failure_reason(error))
        except LeaseLost:
            pass  # another attempt owns the document now and keeps its status
        raise
    return len(awaiting)


def record(session: Session, claim: Claim, pages_read: int) -> None:
    record_ocr_status(session, claim.document_id, "completed")


STAGE = Stage(
    name="ocr",
    description="read the pages with no text layer with Tesseract, page ranges spread over every worker, pages turned upright",
    run=run,
    record=record,
    weight=40,
    skip_if=skip_if,
    in_worker_thread=True,
    limits_own_time=True,
)
