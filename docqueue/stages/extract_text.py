"""Stage `extract_text`: the text layer of every page, one page at a time.

Pages are written in batches as they are read, so neither the document's
text nor its pages are ever held whole in memory. Pages with no text are
counted: they are the ones OCR must read.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from docqueue.db import session_scope
from docqueue.documents import record_text_summary, save_page_texts
from docqueue.errors import DocumentRejected
from docqueue.memory import batch_size
from docqueue.queue import Claim, DocumentQueueService
from docqueue.stages.inspect import open_document, sniff_type
from docqueue.stages.stage import Stage
from docqueue.text_cleaning import storable_text

#: Pages per INSERT: Postgres here is bound by round trips, not bytes.
PAGES_PER_WRITE = 50


@dataclass(frozen=True)
class TextSummary:
    page_count: int
    pages_without_text: int
    text_chars: int


def _write_pages(claim: Claim, pages: list[tuple[int, str]]) -> None:
    with session_scope() as session:
        DocumentQueueService(session).hold_lease(claim)
        save_page_texts(session, claim.document_id, pages)


def run(path: str, claim: Claim) -> TextSummary:
    """Extract and store each page's text. Runs in a PDF pool process."""
    import pymupdf  # only in PDF pool processes, which import it at start

    pages_without_text = 0
    text_chars = 0
    batch: list[tuple[int, str]] = []
    with open_document(path, sniff_type(path)) as document:
        for index in range(document.page_count):
            try:
                page_text = storable_text(document.load_page(index).get_text()).strip()
            except (pymupdf.FileDataError, RuntimeError) as error:
                raise DocumentRejected(f"page {index + 1} is damaged and cannot be read ({error})") from None
            pages_without_text += not page_text
            text_chars += len(page_text)
            batch.append((index + 1, page_text))
            if len(batch) >= batch_size(PAGES_PER_WRITE):
                _write_pages(claim, batch)
                batch = []
        if batch:
            _write_pages(claim, batch)
        return TextSummary(document.page_count, pages_without_text, text_chars)


def record(session: Session, claim: Claim, summary: TextSummary) -> None:
    record_text_summary(session, claim.document_id, summary.page_count, summary.pages_without_text)


STAGE = Stage(
    name="extract_text",
    description="store every page's text layer, page by page",
    run=run,
    record=record,
    time_limit_setting="discovery_time_limit_seconds",
    weight=9,
)
