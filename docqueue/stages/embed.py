"""Stage `embed`: vectors for every chunk (and image, with a CLIP-style model) from the provider.

Chunks go to the provider EMBEDDINGS_BATCH_SIZE at a time, up to
MAX_CONCURRENT_IO batches at once; each window's vectors are written in one
statement, so a retry resumes after the last window written (rows that have
a vector from this model are not sent again). Unconfigured, the stage is
skipped and says so.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from docqueue.db import session_scope
from docqueue.models import DocumentChunk, DocumentImage
from docqueue.queue import Claim
from docqueue.results import batched
from docqueue.results.images import image_bytes
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


def _pending_chunks(model: str, job_id: int):
    return (DocumentChunk.job_id == job_id, DocumentChunk.embedding_model.is_distinct_from(model))


def _pending_images(model: str, job_id: int):
    return (
        DocumentImage.job_id == job_id,
        DocumentImage.skipped_reason.is_(None),
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
    claim: Claim, table: str, model: str, fetch: Callable, embed: Callable, in_flight: int, total: int
) -> int:
    """Embed every pending row of `table`, `in_flight` batches at a time; return how many."""
    batch_size = get_settings().embeddings_batch_size
    after, done = 0, 0
    with ThreadPoolExecutor(max_workers=in_flight, thread_name_prefix="embed") as pool:
        while True:
            with session_scope() as session:
                items = fetch(session, claim, model, after, batch_size * in_flight)
            if not items:
                return done
            batches = list(batched(items, batch_size))
            vectors = pool.map(lambda batch: embed([payload for _, payload in batch]), batches)
            keyed = [(key, vector) for batch, found in zip(batches, vectors) for (key, _), vector in zip(batch, found)]
            after, done = items[-1][0], done + len(items)
            with committing_batch(claim, added=len(items), total=total, unit="items", checkpoint=done) as session:
                store_embeddings(session, table, claim.job_id, keyed, model)


def run(path: None, claim: Claim) -> EmbedSummary:
    """Embed the run's chunks, then its images when an image model is configured."""
    # here, not at module level: PDF processes import every stage and run none of the AI ones, and the AI
    # client (requests, pybreaker, Sentry, Dramatiq) would cost each ~10 MB.
    from docqueue.ai.embeddings import embedding_provider

    settings = get_settings()
    provider = embedding_provider(settings)
    image_model = provider.image_model
    with session_scope() as session:
        # Everything the stage embeds in this run, done by an earlier attempt or not: units add up across attempts.
        total = session.scalar(select(func.count()).where(DocumentChunk.job_id == claim.job_id))
        if image_model:
            stored = (DocumentImage.job_id == claim.job_id, DocumentImage.skipped_reason.is_(None))
            total += session.scalar(select(func.count()).where(*stored))
    parallel = provider.parallel_batches
    embedded_chunks = _embed_all(
        claim, "document_chunks", provider.model, _chunk_inputs, provider.embed_texts, parallel, total
    )
    embedded_images = 0
    if image_model:
        in_flight = min(parallel, IMAGE_BATCHES_IN_FLIGHT)
        embedded_images = _embed_all(
            claim, "document_images", image_model, _image_inputs, provider.embed_images, in_flight, total
        )
    return EmbedSummary(embedded_chunks, embedded_images)


def record(session: Session, claim: Claim, summary: EmbedSummary) -> None:
    """Vectors are written window by window; nothing is left to record."""


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
