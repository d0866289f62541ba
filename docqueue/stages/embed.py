"""Stage `embed`: vectors for every chunk (and image, with a CLIP-style model) from the provider.

Chunks go to the provider EMBEDDINGS_BATCH_SIZE at a time, up to
MAX_CONCURRENT_IO batches at once; each window's vectors are written in one
statement, so a retry resumes after the last window written (rows that have
a vector from this model are not sent again). Unconfigured, the stage is
skipped and says so.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from docqueue.ai.embeddings import EmbeddingProvider, embedding_provider
from docqueue.db import session_scope
from docqueue.models import DocumentChunk, DocumentImage
from docqueue.queue import Claim, DocumentQueueService
from docqueue.results import batched
from docqueue.results.images import image_key
from docqueue.results.vectors import store_embeddings
from docqueue.settings import get_settings
from docqueue.stages.stage import Lane, Stage
from docqueue.storage import blob_store

#: Image batches held at once: images are larger than text, so fewer are in flight than chunk batches.
IMAGE_BATCHES_IN_FLIGHT = 2


@dataclass(frozen=True)
class EmbedSummary:
    chunks: int
    images: int
    skipped_reason: str | None = None


def _chunks_after(session: Session, claim: Claim, model: str, after: int, limit: int) -> list[tuple[int, str]]:
    rows = session.execute(
        select(DocumentChunk.seq, DocumentChunk.text)
        .where(
            DocumentChunk.document_id == claim.document_id,
            DocumentChunk.seq > after,
            DocumentChunk.embedding_model.is_distinct_from(model),
        )
        .order_by(DocumentChunk.seq)
        .limit(limit)
    )
    return [tuple(row) for row in rows]


def _images_after(session: Session, claim: Claim, model: str, after: int, limit: int) -> list[tuple[int, tuple]]:
    rows = session.execute(
        select(DocumentImage.id, DocumentImage.sha256, DocumentImage.format)
        .where(
            DocumentImage.document_id == claim.document_id,
            DocumentImage.id > after,
            DocumentImage.skipped_reason.is_(None),
            DocumentImage.embedding_model.is_distinct_from(model),
        )
        .order_by(DocumentImage.id)
        .limit(limit)
    ).all()
    store = blob_store(session)
    found = []
    for image_id, sha256, fmt in rows:
        data = io.BytesIO()
        store.download_to(image_key(claim.document_id, sha256), data)
        found.append((image_id, (data.getvalue(), fmt)))
    return found


def _embed_all(claim: Claim, table: str, model: str, fetch: Callable, embed: Callable, batches_in_flight: int) -> int:
    """Embed every pending row of `table`, a window of batches at a time; return how many."""
    settings = get_settings()
    window = settings.embeddings_batch_size * batches_in_flight
    after, done = -1, 0
    with ThreadPoolExecutor(max_workers=batches_in_flight, thread_name_prefix="embed") as pool:
        while True:
            with session_scope() as session:
                items = fetch(session, claim, model, after, window)
            if not items:
                return done
            batches = list(batched(items, settings.embeddings_batch_size))
            vectors = pool.map(lambda batch: embed([payload for _, payload in batch]), batches)
            keyed = [(key, vector) for batch, found in zip(batches, vectors) for (key, _), vector in zip(batch, found)]
            with session_scope() as session:
                DocumentQueueService(session).hold_lease(claim)
                store_embeddings(session, table, claim.document_id, keyed, model)
            after, done = items[-1][0], done + len(items)


def run(path: None, claim: Claim) -> EmbedSummary:
    """Embed the document's chunks, then its images when an image model is configured."""
    settings = get_settings()
    provider: EmbeddingProvider | None = embedding_provider(settings)
    if provider is None:
        return EmbedSummary(0, 0, "skipped: no embeddings provider is configured (EMBEDDINGS_PROVIDER)")
    parallel = settings.max_concurrent_io
    chunks = _embed_all(claim, "document_chunks", provider.model, _chunks_after, provider.embed_texts, parallel)
    images = 0
    if provider.image_model:
        in_flight = min(parallel, IMAGE_BATCHES_IN_FLIGHT)
        images = _embed_all(
            claim, "document_images", provider.image_model, _images_after, provider.embed_images, in_flight
        )
    return EmbedSummary(chunks, images)


def record(session: Session, claim: Claim, summary: EmbedSummary) -> None:
    """Vectors are written as they come; nothing is left to record."""


STAGE = Stage(
    name="embed",
    description="embed chunks (and images, with a CLIP-style model) through the configured provider",
    run=run,
    record=record,
    lane=Lane.IO,
    weight=2,
)
