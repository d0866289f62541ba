"""Stage `enrich`: the design's "product discovery" and "vision description" calls.

Product discovery asks the chat provider (CHAT_*) about the document's text;
vision description, when CHAT_VISION_MODEL is set, asks about each stored
image, up to MAX_CONCURRENT_IO at once. Answers are written a window at a
time, so a retry asks only what this run has no answer for yet. Off (the
stage is skipped, saying so) unless CHAT_BASE_URL is set.
"""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from docqueue.ai.chat import ChatClient, chat_configured
from docqueue.db import session_scope
from docqueue.models import DocumentImage
from docqueue.queue import Claim, DocumentQueueService
from docqueue.results.chunks import PAGE_SEPARATOR, stream_page_texts
from docqueue.results.enrichment import (
    PRODUCT_DISCOVERY,
    VISION_DESCRIPTION,
    answered,
    drop_answers_of_older_runs,
    save_answers,
)
from docqueue.results.images import image_key
from docqueue.settings import get_settings
from docqueue.stages.stage import Lane, Stage
from docqueue.storage import blob_store

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
    skipped_reason: str | None = None


def _document_text(claim: Claim) -> str:
    parts, length = [], 0
    with session_scope() as session:
        for _, page_text in stream_page_texts(session, claim.document_id):
            if length >= MAX_TEXT_CHARS:
                break
            parts.append(page_text)
            length += len(page_text) + len(PAGE_SEPARATOR)
    return PAGE_SEPARATOR.join(parts)[:MAX_TEXT_CHARS]


def _write(claim: Claim, answers: list[tuple[str, int | None, str, str]]) -> None:
    with session_scope() as session:
        DocumentQueueService(session).hold_lease(claim)
        save_answers(session, claim.document_id, claim.job_id, answers)


def _discover_products(claim: Claim, chat: ChatClient) -> int:
    with session_scope() as session:
        if None in answered(session, claim.document_id, claim.job_id, PRODUCT_DISCOVERY):
            return 0
    text = _document_text(claim)
    if not text.strip():
        return 0
    _write(claim, [(PRODUCT_DISCOVERY, None, chat.model, chat.ask_about_text(PRODUCT_QUESTION, text))])
    return 1


def _unanswered_images(claim: Claim, after: int, limit: int) -> tuple[list[tuple[int, bytes, str]], int | None]:
    with session_scope() as session:
        done = answered(session, claim.document_id, claim.job_id, VISION_DESCRIPTION)
        rows = session.execute(
            select(DocumentImage.id, DocumentImage.sha256, DocumentImage.format)
            .where(
                DocumentImage.document_id == claim.document_id,
                DocumentImage.id > after,
                DocumentImage.skipped_reason.is_(None),
            )
            .order_by(DocumentImage.id)
            .limit(limit)
        ).all()
        store = blob_store(session)
        found = []
        for image_id, sha256, fmt in rows:
            if image_id in done:
                continue
            data = io.BytesIO()
            store.download_to(image_key(claim.document_id, sha256), data)
            found.append((image_id, data.getvalue(), fmt))
        # The last id looked at, answered or not, so the next window starts after it.
        return found, (rows[-1][0] if rows else None)


def _describe_images(claim: Claim, chat: ChatClient, parallel: int) -> int:
    after, described = 0, 0
    with ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="enrich") as pool:
        while True:
            images, last_id = _unanswered_images(claim, after, parallel)
            if last_id is None:
                return described
            answers = pool.map(lambda image: chat.ask_about_image(VISION_QUESTION, image[1], image[2]), images)
            rows = [(VISION_DESCRIPTION, image[0], chat.vision_model, answer) for image, answer in zip(images, answers)]
            if rows:
                _write(claim, rows)
            after, described = last_id, described + len(rows)


def run(path: None, claim: Claim) -> EnrichSummary:
    """Ask about the text, then about each image when a vision model is configured."""
    settings = get_settings()
    if not chat_configured(settings):
        return EnrichSummary(0, "skipped: enrichment is off (CHAT_BASE_URL is not set)")
    chat = ChatClient(settings)
    answers = _discover_products(claim, chat)
    if settings.chat_vision_model:
        answers += _describe_images(claim, chat, settings.max_concurrent_io)
    return EnrichSummary(answers)


def record(session: Session, claim: Claim, summary: EnrichSummary) -> None:
    if summary.skipped_reason is None:
        drop_answers_of_older_runs(session, claim.document_id, claim.job_id)


STAGE = Stage(
    name="enrich",
    description="ask the chat provider about the text (product discovery) and each image (vision description)",
    run=run,
    record=record,
    lane=Lane.IO,
    weight=2,
)
