"""Per-document budgets: what one upload may cost the service, however it is built.

A hostile but ordinary file (500 pages of a million characters sharing one
content stream, 707 KB) once grew the database by 1.5 GB and sent ~62,800
embedding requests; a page of 20,000 distinct 2 × 2 images sent 20,141
vision requests. So each document has budgets, all settings:

- MAX_DOCUMENT_PAGES: `inspect` refuses a document with more pages (a
  permanent failure, not retried);
- MAX_DOCUMENT_TEXT_CHARS: `extract_text` keeps text up to it, then stores
  the later pages without text (and OCR does not read them);
- MAX_DOCUMENT_CHUNKS: `chunk` stops there;
- MAX_AI_CALLS_PER_DOCUMENT: the requests `embed` and `enrich` send in one
  run, together (counted on the run's queue row, committed with the answers);
- MIN_AI_IMAGE_SIDE: an image narrower or lower than this is stored but
  neither embedded nor described.

What a budget cut is recorded on the document (`budget_cuts`, by what was
cut), shown by the API and on the document's page, like
`text_truncated_pages` for the per-page cap.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from sqlalchemy import text
from sqlalchemy.orm import Session

from docqueue.jobs import Claim
from docqueue.queue import ai_calls
from docqueue.settings import get_settings


@dataclass(frozen=True)
class BudgetCut:
    """One budget a run reached: the setting, its value, and what was cut, in words."""

    setting: str
    limit: int
    message: str

    def as_json(self) -> str:
        return json.dumps(asdict(self))


def pages_over_limit(page_count: int) -> str | None:
    """Why a document of `page_count` pages is refused, or None when MAX_DOCUMENT_PAGES allows it."""
    limit = get_settings().max_document_pages
    if page_count <= limit:
        return None
    return (
        f"the document has {page_count:,} pages, over the limit of {limit:,} pages a document "
        "(MAX_DOCUMENT_PAGES): split it into smaller files"
    )


def text_cut(first_page: int, page_count: int) -> BudgetCut:
    """The mark for text kept only up to page `first_page` (whose text was cut, and every page after it)."""
    limit = get_settings().max_document_text_chars
    return BudgetCut(
        "MAX_DOCUMENT_TEXT_CHARS",
        limit,
        f"text stops at page {first_page} of {page_count}: the document's budget of {limit:,} characters "
        f"(MAX_DOCUMENT_TEXT_CHARS) was reached, so that page was cut and later pages keep no text",
    )


def chunks_cut(last_page: int) -> BudgetCut:
    """The mark for chunking stopped at MAX_DOCUMENT_CHUNKS, its last chunk ending on page `last_page`."""
    limit = get_settings().max_document_chunks
    return BudgetCut(
        "MAX_DOCUMENT_CHUNKS",
        limit,
        f"chunking stopped at {limit:,} chunks (MAX_DOCUMENT_CHUNKS), on page {last_page}: "
        "the text after it is not chunked, embedded or enriched",
    )


def ai_calls_cut(stage: str, left_out: str) -> BudgetCut:
    """The mark for stage `stage` stopped by MAX_AI_CALLS_PER_DOCUMENT, `left_out` saying what it did not send."""
    limit = get_settings().max_ai_calls_per_document
    return BudgetCut(
        "MAX_AI_CALLS_PER_DOCUMENT",
        limit,
        f"{stage} stopped: the document's budget of {limit:,} AI calls (MAX_AI_CALLS_PER_DOCUMENT) was spent; "
        f"{left_out}",
    )


def record_budget_cut(session: Session, document_id: int, key: str, cut: BudgetCut) -> None:
    """Mark on the document that budget `key` ("chunks", "embed", "enrich") cut this run's work."""
    session.execute(
        text(
            "UPDATE documents SET budget_cuts = budget_cuts || jsonb_build_object(CAST(:key AS text), "
            "CAST(:cut AS jsonb)), updated_at = now() WHERE id = :document_id"
        ),
        {"document_id": document_id, "key": key, "cut": cut.as_json()},
    )


class AiCallBudget:
    """The AI calls a run may still send: MAX_AI_CALLS_PER_DOCUMENT less what its stages committed already.

    Calls are counted in the transaction that stores their answers
    (`spend`), so a retried attempt sees what the ones before it spent; a
    batch rolled back is not counted, and at most a window's calls per
    attempt go uncounted that way.
    """

    def __init__(self, session: Session, claim: Claim) -> None:
        self.claim = claim
        self.left = max(0, get_settings().max_ai_calls_per_document - ai_calls.spent(session, claim.job_id))

    def spend(self, session: Session, calls: int) -> None:
        """Count `calls` sent, in the caller's transaction (the one storing their answers)."""
        if calls:
            ai_calls.count(session, self.claim.job_id, calls)
            self.left = max(0, self.left - calls)
