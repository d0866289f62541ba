"""Stage `enrich`: the design's "product discovery" and "vision description" calls.

Product discovery asks the chat provider (CHAT_*) about the document's text;
vision description, when CHAT_VISION_MODEL is set, asks about each stored
image, up to MAX_CONCURRENT_IO at once. Answers are written a window at a
time, so a retry asks only what this run has no answer for yet. Off (the
stage is skipped, saying so) unless CHAT_BASE_URL is set.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from docqueue.db import session_scope
from docqueue.models import DocumentImage
from docqueue.queue import Claim
from docqueue.results.chunks import PAGE_SEPARATOR, stream_page_texts
from docqueue.results.enrichment import (
    PRODUCT_DISCOVERY,
    VISION_DESCRIPTION,
    answered,
    save_answers,
)
from docqueue.results.images import image_bytes
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


def _document_text(claim: Claim) -> str:
    parts, length = [], 0
    with session_scope() as session:
        for _, page_text in stream_page_texts(session, claim.job_id):
            if length >= MAX_TEXT_CHARS:
                break
            parts.append(page_text)
            length += len(page_text) + len(PAGE_SEPARATOR)
    return PAGE_SEPARATOR.join(parts)[:MAX_TEXT_CHARS]


def _discover_products(claim: Claim, chat: ChatClient, total: int) -> int:
    with session_scope() as session:
        if None in answered(session, claim.job_id, PRODUCT_DISCOVERY):
            return 0
    text = _document_text(claim)
    if not text.strip():
        return 0
    answer = chat.ask_about_text(PRODUCT_QUESTION, text)
    with committing_batch(claim, added=1, total=total, unit="answers", checkpoint=0) as session:
        save_answers(session, claim.document_id, claim.job_id, [(PRODUCT_DISCOVERY, None, chat.model, answer)])
    return 1


def _unanswered_images(claim: Claim, after: int, limit: int) -> tuple[list[DocumentImage], list[bytes], int | None]:
    """The next `limit` stored images after id `after` this run has no description of, their bytes, the last id seen."""
    with session_scope() as session:
        done = answered(session, claim.job_id, VISION_DESCRIPTION)
        rows = session.scalars(
            select(DocumentImage)
            .where(
                DocumentImage.job_id == claim.job_id, DocumentImage.id > after, DocumentImage.skipped_reason.is_(None)
            )
            .order_by(DocumentImage.id)
            .limit(limit)
        ).all()
        images = [image for image in rows if image.id not in done]
        return images, [image_bytes(session, image) for image in images], (rows[-1].id if rows else None)


def _describe_images(claim: Claim, chat: ChatClient, parallel: int, total: int) -> int:
    after, described = 0, 0
    with ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="enrich") as pool:
        while True:
            images, data, last_id = _unanswered_images(claim, after, parallel)
            if last_id is None:
                return described
            answers = list(
                pool.map(lambda pair: chat.ask_about_image(VISION_QUESTION, pair[1], pair[0].format), zip(images, data))
            )
            rows = [(VISION_DESCRIPTION, image.id, chat.vision_model, answer) for image, answer in zip(images, answers)]
            with committing_batch(claim, added=len(rows), total=total, unit="answers", checkpoint=last_id) as session:
                if rows:
                    save_answers(session, claim.document_id, claim.job_id, rows)
            after, described = last_id, described + len(rows)


def run(path: None, claim: Claim) -> EnrichSummary:
    """Ask about the text, then about each image when a vision model is configured."""
    # here, not at module level: PDF processes import every stage and run none of the AI ones, and the AI
    # client (requests, pybreaker, Sentry, Dramatiq) would cost each ~10 MB.
    from docqueue.ai.chat import ChatClient

    settings = get_settings()
    chat = ChatClient(settings)
    images = 0
    if settings.chat_vision_model:
        with session_scope() as session:
            images = session.scalar(
                select(func.count()).where(DocumentImage.job_id == claim.job_id, DocumentImage.skipped_reason.is_(None))
            )
    answers = _discover_products(claim, chat, images + 1)
    if settings.chat_vision_model:
        answers += _describe_images(claim, chat, settings.max_concurrent_io, images + 1)
    return EnrichSummary(answers)


def record(session: Session, claim: Claim, summary: EnrichSummary) -> None:
    """Answers are written as they come; nothing is left to record."""


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
