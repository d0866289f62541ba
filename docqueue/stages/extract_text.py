"""Stage `extract_text`: the text layer of every page, one page at a time.

Pages are written in batches as they are read, so neither the document's
text nor its pages are ever held whole in memory: a batch is written once
it holds TEXT_BATCH_CHARS characters (a quarter while memory is tight) or
BATCH_SECONDS after it began (see `checkpoints`), ROWS_PER_STATEMENT pages
a statement, so an ordinary document of a few hundred pages is one
transaction. Each batch commits with the stage's checkpoint (its last
page), so a retried attempt goes on from the next page. Pages with no text
are the ones OCR must read. A page's text is cut at MAX_PAGE_TEXT_CHARS (a
hostile page can draw millions of characters); each page records whether
it was cut (a page exactly at the cap was not), and the number of pages cut
is recorded on the document. The document's text as a whole is cut at
MAX_DOCUMENT_TEXT_CHARS (`docqueue/budgets.py`): the page that reaches it
keeps what fits, every later page is stored without text and without being
read, marked cut (so OCR does not read it either), and the cut is recorded
on the document's `budget_cuts`. A page whose contents cannot be read (a broken
content stream, as in real files from bug reports) is stored without text
and with a note saying why: it costs that page, not the document, and OCR
does not try it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy.orm import Session

from docqueue.budgets import text_cut
from docqueue.db import session_scope
from docqueue.documents import record_text_summary
from docqueue.jobs import Claim
from docqueue.results import batched
from docqueue.results.pages import copy_page_texts, save_page_texts, text_kept_before
from docqueue.runtime.pool_guard import read_piece, reading
from docqueue.settings import get_settings
from docqueue.stages.checkpoints import BatchBudget, committing_batch
from docqueue.stages.inspect import open_document, sniff_type
from docqueue.stages.stage import OnePass, Read, Reading, Stage
from docqueue.text_cleaning import storable_text

#: Characters of text a batch holds before it is written (a quarter while memory is tight): ~1,000 pages of prose.
TEXT_BATCH_CHARS = 4_000_000


def _write_pages(claim: Claim, pages: list[tuple[int, str, bool, str | None]], page_count: int) -> None:
    with committing_batch(claim, added=len(pages), total=page_count, unit="pages", checkpoint=pages[-1][0]) as session:
        for rows in batched(pages, get_settings().rows_per_statement):
            save_page_texts(session, claim.document_id, claim.job_id, rows)


@dataclass(frozen=True)
class TextSummary:
    page_count: int
    #: The page where MAX_DOCUMENT_TEXT_CHARS cut the text (it and every page after it), or None.
    budget_cut_at: int | None = None


def _resume(claim: Claim, max_chars: int) -> tuple[int, int | None]:
    """Characters the batches before the checkpoint kept, and the page the document budget cut there, if any."""
    if not claim.checkpoint:
        return 0, None
    with session_scope() as session:
        return text_kept_before(session, claim.job_id, claim.checkpoint, max_chars)


class PageTexts:
    """Reads a document's pages in order, within the document's text budget: each page as a stored row
    (number, text, whether it was cut, why its contents could not be read), and where the budget cut.

    `kept_so_far` and `cut_at` carry over what the batches before a checkpoint kept.
    """

    def __init__(self, kept_so_far: int = 0, cut_at: int | None = None) -> None:
        settings = get_settings()
        self.max_chars = settings.max_page_text_chars
        self.budget_left = max(0, settings.max_document_text_chars - kept_so_far)
        #: The page where MAX_DOCUMENT_TEXT_CHARS cut the text (it and every page after it), or None.
        self.cut_at = cut_at

    def rows(self, document, start: int = 0) -> Iterator[tuple[int, str, bool, str | None]]:
        """Each page's row from index `start` on."""
        for index in range(start, document.page_count):
            if self.budget_left == 0 and self.cut_at is not None:
                # Past the document's budget: the page is not even read (a hostile one costs seconds to).
                yield (index + 1, "", True, None)
                continue
            with reading(f"page {index + 1}"):
                page = document.load_page(index)  # a page the page tree cannot give fails the document
            # A broken content stream costs its page only: stored without text, with the reason.
            raw_text, broken = read_piece(f"page {index + 1}", page.get_text)
            page_text = storable_text(raw_text or "").strip()
            kept = page_text[: min(self.max_chars, self.budget_left)]
            cut = len(kept) < len(page_text)
            if cut and len(kept) < self.max_chars and self.cut_at is None:
                self.cut_at = index + 1
            self.budget_left -= len(kept)
            if self.budget_left == 0 and self.cut_at is None and index + 1 < document.page_count:
                self.cut_at = index + 2  # the budget ran out exactly at this page's end: the next one is cut
            note = f"{broken}; the page was skipped" if broken else None
            yield (index + 1, kept, cut, note)


def run(path: str, claim: Claim) -> TextSummary:
    """Extract and store each page's text after the checkpoint, within the document's text budget; return the
    page count and where the budget cut. Runs in a PDF pool process."""
    reader = PageTexts(*_resume(claim, get_settings().max_page_text_chars))
    batch: list[tuple[int, str, bool, str | None]] = []
    budget = BatchBudget(TEXT_BATCH_CHARS)
    with open_document(path, sniff_type(path)) as document:
        for row in reader.rows(document, claim.checkpoint):
            batch.append(row)
            budget.add(len(row[1]))
            if budget.due():
                _write_pages(claim, batch, document.page_count)
                batch = []
                budget.clear()
        if batch:
            _write_pages(claim, batch, document.page_count)
        return TextSummary(document.page_count, reader.cut_at)


def record(session: Session, claim: Claim, summary: TextSummary) -> None:
    cut = text_cut(summary.budget_cut_at, summary.page_count) if summary.budget_cut_at else None
    record_text_summary(session, claim.document_id, claim.job_id, summary.page_count, cut)


def read_in_pass(reading: Reading) -> Read:
    """Every page's text, held for a small document's one pass, which stores them with one COPY. A page without
    text (one for OCR) ends the pass here: OCR will likely run next, and images and chunks after it, so what the
    pass read of them would be dropped (bench/ocr_throughput.py: a 16-page scan's first claim to completed took
    14.1 s with its images read in the pass, against 6.85 s for bare tesseract)."""
    pages = PageTexts()
    rows = list(pages.rows(reading.document))
    for_ocr = any(not text and not cut and note is None for _, text, cut, note in rows)
    summary = TextSummary(reading.document.page_count, pages.cut_at)
    return Read(summary, rows, ("pages", len(rows)), ends_pass=for_ocr)


def store_in_pass(session: Session, claim: Claim, rows: list[tuple[int, str, bool, str | None]]) -> None:
    copy_page_texts(session, claim.document_id, claim.job_id, rows)


STAGE = Stage(
    name="extract_text",
    description="store every page's text layer, page by page",
    run=run,
    record=record,
    time_limit_setting="discovery_time_limit_seconds",
    weight=9,
    one_pass=OnePass(read_in_pass, store_in_pass),
)
