"""Stage `enrich`: the design's "product discovery" and "vision description" calls.

Product discovery asks the chat provider (CHAT_*) about the document's text;
vision description, when CHAT_VISION_MODEL is set, asks about each stored
image, up to MAX_CONCURRENT_IO at once. Answers are written a window at a
time, so a retry asks only what this run has no answer for yet. Images
smaller than MIN_AI_IMAGE_SIDE are not described, and each question spends
one of the run's MAX_AI_CALLS_PER_DOCUMENT (`docqueue/budgets.py`): once it is
spent the stage stops, marking on the document what it left unasked. Off
(the stage is skipped, saying so) unless CHAT_BASE_URL is set.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from docqueue.budgets import AiCallBudget, ai_calls_cut, record_budget_cut
from docqueue.db import session_scope
from docqueue.jobs import Claim
from docqueue.models import DocumentImage
from docqueue.results.chunks import PAGE_SEPARATOR, stream_page_texts
from docqueue.results.enrichment import (
    PRODUCT_DISCOVERY,
    VISION_DESCRIPTION,
    answered,
    save_answers,
)
from docqueue.results.images import image_bytes, sent_to_ai
from docqueue.settings import get_settings
from docqueue.stages.checkpoints import committing_batch
from docqueue.stages.stage import Lane, Stage

if TYPE_CHECKING:
    from docqueue.ai.chat import ChatClient

PRODUCT_QUESTION = (
    "List the products this document mentions or describes, one per line, with a short note on each. "
    "Answer 'none' if it mentions no product."
)
VISION_QUESTION = "Describe this image from a document in two or three sentences; name any product it shows."
#: The text sent for product discovery: the start of the document, within any chat model's context.
MAX_TEXT_CHARS = 24_000


@dataclass(frozen=True)
class EnrichSummary:
    answers: int
    #: What the spent AI call budget left unasked, in words; None when nothing was.
    left_out: str | None = None


def _document_text(claim: Claim) -> str:
    parts, length = [], 0
    with session_scope() as session:
        for _, page_text in stream_page_texts(session, claim.job_id):
            if length >= MAX_TEXT_CHARS:
                break
            parts.append(page_text)
            length += len(page_text) + len(PAGE_SEPARATOR)
    return PAGE_SEPARATOR.join(parts)[:MAX_TEXT_CHARS]


def _discover_products(claim: Claim, chat: ChatClient, total: int, calls: AiCallBudget) -> int | None:
    """Ask about the text; how many answers that stored (0 or 1), None when the AI call budget had no call left."""
    with session_scope() as session:
        if None in answered(session, claim.job_id, PRODUCT_DISCOVERY):
            return 0
    text = _document_text(claim)
    if not text.strip():
        return 0
    if not calls.left:
        return None
    answer = chat.ask_about_text(PRODUCT_QUESTION, text)
    with committing_batch(claim, added=1, total=total, unit="answers", checkpoint=0) as session:
        save_answers(session, claim.document_id, claim.job_id, [(PRODUCT_DISCOVERY, None, chat.model, answer)])
        calls.spend(session, 1)
    return 1


def _describable(claim: Claim):
    """SQL conditions: the run's images a vision model is asked about (stored, and not too small to mean anything)."""
    return sent_to_ai(claim.job_id, get_settings().min_ai_image_side)


def _unanswered_images(claim: Claim, after: int, limit: int) -> tuple[list[DocumentImage], list[bytes], int | None]:
    """The next `limit` stored images after id `after` this run has no description of, their bytes, the last id seen."""
    with session_scope() as session:
        done = answered(session, claim.job_id, VISION_DESCRIPTION)
        rows = session.scalars(
            select(DocumentImage)
            .where(*_describable(claim), DocumentImage.id > after)
            .order_by(DocumentImage.id)
            .limit(limit)
        ).all()
        images = [image for image in rows if image.id not in done]
        return images, [image_bytes(session, image) for image in images], (rows[-1].id if rows else None)


def _undescribed(claim: Claim) -> int:
    """Images of the run a vision model should describe and has not: what a spent budget left unasked."""
    with session_scope() as session:
        done = answered(session, claim.job_id, VISION_DESCRIPTION)
        ids = session.scalars(select(DocumentImage.id).where(*_describable(claim))).all()
    return sum(image_id not in done for image_id in ids)


def _describe_images(claim: Claim, chat: ChatClient, parallel: int, total: int, calls: AiCallBudget) -> int | None:
    """Describe each image; how many, or None when the AI call budget ran out with images left."""
    after, described = 0, 0
    with ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="enrich") as pool:
        while True:
            window = min(parallel, calls.left)
            images, data, last_id = _unanswered_images(claim, after, window or 1)
            if last_id is None:
                return described
            if not window:
                return None
            answers = list(
                pool.map(lambda pair: chat.ask_about_image(VISION_QUESTION, pair[1], pair[0].format), zip(images, data))
            )
            rows = [(VISION_DESCRIPTION, image.id, chat.vision_model, answer) for image, answer in zip(images, answers)]
            with committing_batch(claim, added=len(rows), total=total, unit="answers", checkpoint=last_id) as session:
                if rows:
                    save_answers(session, claim.document_id, claim.job_id, rows)
                    calls.spend(session, len(rows))
            after, described = last_id, described + len(rows)


def run(path: None, claim: Claim) -> EnrichSummary:
    """Ask about the text, then about each image when a vision model is configured, within the AI call budget."""
    # here, not at module level: PDF processes import every stage and run none of the AI ones, and the AI
    # client (requests, pybreaker, Sentry, Dramatiq) would cost each ~10 MB.
    from docqueue.ai.chat import ChatClient

    settings = get_settings()
    chat = ChatClient(settings)
    images = 0
    with session_scope() as session:
        calls = AiCallBudget(session, claim)
        if settings.chat_vision_model:
            images = session.scalar(select(func.count()).where(*_describable(claim)))
    discovered = _discover_products(claim, chat, images + 1, calls)
    if discovered is None:
        return EnrichSummary(0, "product discovery was not asked and no image was described")
    answers = discovered
    if settings.chat_vision_model:
        described = _describe_images(claim, chat, settings.max_concurrent_io, images + 1, calls)
        if described is None:
            return EnrichSummary(answers, f"{_undescribed(claim):,} images were not described")
        answers += described
    return EnrichSummary(answers)


def record(session: Session, claim: Claim, summary: EnrichSummary) -> None:
    """Answers are written as they come; only a spent AI call budget is left to record."""
    if summary.left_out:
        record_budget_cut(session, claim.document_id, "enrich", ai_calls_cut("enrichment", summary.left_out))


def unconfigured(session: Session, claim: Claim) -> str | None:
    """Why the stage is skipped: enrichment is off."""
    from docqueue.ai.chat import chat_configured  # see `run`

    return None if chat_configured(get_settings()) else "enrichment is off (CHAT_BASE_URL is not set)"


STAGE = Stage(
    name="enrich",
    description="ask the chat provider about the text (product discovery) and each image (vision description)",
    run=run,
    record=record,
    time_limit_setting="embedding_time_limit_seconds",
    lane=Lane.IO,
    weight=2,
    skip_if=unconfigured,
    optional=True,
)
