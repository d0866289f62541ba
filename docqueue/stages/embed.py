"""Stage `embed`: vectors for every chunk (and image, with a CLIP-style model) from the provider.

Chunks go to the provider EMBEDDINGS_BATCH_SIZE at a time, up to
MAX_CONCURRENT_IO batches at once; each window's vectors are written in one
statement, so a retry resumes after the last window written (rows that have
a vector from this model are not sent again). Images smaller than
MIN_AI_IMAGE_SIDE are not sent. Each window spends requests of the run's
MAX_AI_CALLS_PER_DOCUMENT (`docqueue/budgets.py`); once it is spent the
stage stops, marking on the document what it left unembedded. Unconfigured,
the stage is skipped and says so.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from docqueue.budgets import AiCallBudget, ai_calls_cut, record_budget_cut
from docqueue.db import session_scope
from docqueue.jobs import Claim
from docqueue.models import DocumentChunk, DocumentImage
from docqueue.results import batched
from docqueue.results.images import image_bytes, sent_to_ai
from docqueue.results.vectors import store_embeddings
from docqueue.settings import get_settings
from docqueue.stages.checkpoints import committing_batch
from docqueue.stages.stage import Lane, Stage

#: Image batches held at once: images are larger than text, so fewer are in flight than chunk batches.
IMAGE_BATCHES_IN_FLIGHT = 2


@dataclass(frozen=True)
class EmbedSummary:
    chunks: int
    images: int
    #: Chunks and images left unembedded when the AI call budget ran out.
    left_out: int = 0


def _pending_chunks(model: str, job_id: int):
    return (DocumentChunk.job_id == job_id, DocumentChunk.embedding_model.is_distinct_from(model))


def _pending_images(model: str, job_id: int):
    return (
        *sent_to_ai(job_id, get_settings().min_ai_image_side),
        DocumentImage.embedding_model.is_distinct_from(model),
    )


def _chunk_inputs(session: Session, claim: Claim, model: str, after: int, limit: int) -> list[tuple[int, str]]:
    rows = session.execute(
        select(DocumentChunk.seq, DocumentChunk.text)
        .where(*_pending_chunks(model, claim.job_id), DocumentChunk.seq > after)
        .order_by(DocumentChunk.seq)
        .limit(limit)
    )
    return [tuple(row) for row in rows]


def _image_inputs(session: Session, claim: Claim, model: str, after: int, limit: int) -> list[tuple[int, tuple]]:
    images = session.scalars(
        select(DocumentImage)
        .where(*_pending_images(model, claim.job_id), DocumentImage.id > after)
        .order_by(DocumentImage.id)
        .limit(limit)
    ).all()
    return [(image.id, (image_bytes(session, image), image.format)) for image in images]


def _embed_all(
    claim: Claim,
    table: str,
    model: str,
    fetch: Callable,
    embed: Callable,
    in_flight: int,
    total: int,
    calls: AiCallBudget,
) -> tuple[int, bool]:
    """Embed every pending row of `table`, `in_flight` batches at a time, while the AI call budget lasts;
    return how many, and whether the budget stopped it with rows left."""
    batch_size = get_settings().embeddings_batch_size
    after, done = 0, 0
    with ThreadPoolExecutor(max_workers=in_flight, thread_name_prefix="embed") as pool:
        while True:
            window = batch_size * min(in_flight, calls.left)
            with session_scope() as session:
                items = fetch(session, claim, model, after, window or 1)
            if not items:
                return done, False
            if not window:
                return done, True
            batches = list(batched(items, batch_size))
            vectors = pool.map(lambda batch: embed([payload for _, payload in batch]), batches)
            keyed = [(key, vector) for batch, found in zip(batches, vectors) for (key, _), vector in zip(batch, found)]
            after, done = items[-1][0], done + len(items)
            with committing_batch(claim, added=len(items), total=total, unit="items", checkpoint=done) as session:
                store_embeddings(session, table, claim.job_id, keyed, model)
                calls.spend(session, len(batches))


def _left_out(claim: Claim, model: str, image_model: str) -> int:
    """Chunks and images of the run still without a vector: what a spent budget left out."""
    with session_scope() as session:
        left = session.scalar(select(func.count()).where(*_pending_chunks(model, claim.job_id)))
        if image_model:
            left += session.scalar(select(func.count()).where(*_pending_images(image_model, claim.job_id)))
    return left


def run(path: None, claim: Claim) -> EmbedSummary:
    """Embed the run's chunks, then its images when an image model is configured, within the AI call budget."""
    # here, not at module level: PDF processes import every stage and run none of the AI ones, and the AI
    # client (requests, pybreaker, Sentry, Dramatiq) would cost each ~10 MB.
    from docqueue.ai.embeddings import embedding_provider

    settings = get_settings()
    provider = embedding_provider(settings)
    image_model = provider.image_model
    with session_scope() as session:
        calls = AiCallBudget(session, claim)
        # Everything the stage embeds in this run, done by an earlier attempt or not: units add up across attempts.
        total = session.scalar(select(func.count()).where(DocumentChunk.job_id == claim.job_id))
        if image_model:
            stored = sent_to_ai(claim.job_id, settings.min_ai_image_side)
            total += session.scalar(select(func.count()).where(*stored))
    parallel = provider.parallel_batches
    embedded_chunks, stopped = _embed_all(
        claim, "document_chunks", provider.model, _chunk_inputs, provider.embed_texts, parallel, total, calls
    )
    embedded_images = 0
    if image_model and not stopped:
        in_flight = min(parallel, IMAGE_BATCHES_IN_FLIGHT)
        embedded_images, stopped = _embed_all(
            claim, "document_images", image_model, _image_inputs, provider.embed_images, in_flight, total, calls
        )
    left_out = _left_out(claim, provider.model, image_model) if stopped else 0
    return EmbedSummary(embedded_chunks, embedded_images, left_out)


def record(session: Session, claim: Claim, summary: EmbedSummary) -> None:
    """Vectors are written window by window; only a spent AI call budget is left to record."""
    if summary.left_out:
        left_out = f"{summary.left_out:,} chunks and images were not embedded"
        record_budget_cut(session, claim.document_id, "embed", ai_calls_cut("embedding", left_out))


def unconfigured(session: Session, claim: Claim) -> str | None:
    """Why the stage is skipped: no provider is configured."""
    from docqueue.ai.embeddings import embedding_provider  # see `run`

    if embedding_provider(get_settings()) is None:
        return "no embeddings provider is configured (EMBEDDINGS_PROVIDER is not set)"
    return None


STAGE = Stage(
    name="embed",
    description="embed chunks (and images, with a CLIP-style model) through the configured provider",
    run=run,
    record=record,
    time_limit_setting="embedding_time_limit_seconds",
    lane=Lane.IO,
    weight=2,
    skip_if=unconfigured,
    optional=True,
)
