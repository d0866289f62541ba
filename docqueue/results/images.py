"""Document images: a row per image object of a run, the bytes of each distinct image stored once (by sha256)."""

from __future__ import annotations

import io
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from docqueue.models import DocumentImage
from docqueue.queue.run_outputs import run_blob_prefix
from docqueue.results import batched
from docqueue.storage import blob_store


@dataclass(frozen=True)
class FoundImage:
    """One image object as a stage found it, with bytes to store (None when already stored or skipped)."""

    xref: int
    page_number: int
    sha256: str
    width: int
    height: int
    format: str
    size_bytes: int
    data: bytes | None = None
    skipped_reason: str | None = None


def sent_to_ai(job_id: int, min_side: int) -> tuple:
    """SQL conditions on DocumentImage: run `job_id`'s stored images big enough to mean anything to an AI model.

    One narrower or lower than `min_side` (MIN_AI_IMAGE_SIDE) pixels, a bullet
    or a 2 × 2 speck, is neither embedded nor described: a page of 20,000 of
    them once sent 20,141 vision requests and opened the chat breaker for everyone.
    """
    return (
        DocumentImage.job_id == job_id,
        DocumentImage.skipped_reason.is_(None),
        DocumentImage.width >= min_side,
        DocumentImage.height >= min_side,
    )


def image_key(document_id: int, job_id: int, sha256: str) -> str:
    """Where a run's image bytes live: under the run's prefix, so they go with its other outputs."""
    return f"{run_blob_prefix(document_id, job_id)}images/{sha256}"


def save_images(
    session: Session, document_id: int, job_id: int, images: list[FoundImage], rows_per_statement: int
) -> None:
    """Store the rows of run `job_id`'s `images` and the bytes they carry; a retry never duplicates a row.

    The bytes go in with one COPY, so each image carrying some must be one
    whose sha256 this run has not stored yet (`images_found_before` tells a
    retried attempt which it has); rows go ROWS_PER_STATEMENT a statement.
    """
    carrying = [image for image in images if image.data is not None]
    if carrying:
        blob_store(session).put_many(
            (image_key(document_id, job_id, image.sha256), io.BytesIO(image.data)) for image in carrying
        )
    rows = [
        {
            "document_id": document_id,
            "job_id": job_id,
            "xref": image.xref,
            "page_number": image.page_number,
            "sha256": image.sha256,
            "width": image.width,
            "height": image.height,
            "format": image.format,
            "size_bytes": image.size_bytes,
            "skipped_reason": image.skipped_reason,
        }
        for image in images
    ]
    for chunk in batched(rows, rows_per_statement):
        statement = insert(DocumentImage).values(chunk)
        # An object a failed attempt already stored: this attempt found the same, so leave it.
        session.execute(statement.on_conflict_do_nothing(index_elements=[DocumentImage.job_id, DocumentImage.xref]))


def images_found_before(session: Session, job_id: int) -> tuple[set[int], set[str]]:
    """(xrefs of run `job_id`'s image rows, sha256 of the bytes stored for them): what earlier batches wrote."""
    rows = session.execute(
        select(DocumentImage.xref, DocumentImage.sha256, DocumentImage.skipped_reason).where(
            DocumentImage.job_id == job_id
        )
    ).all()
    return {row.xref for row in rows}, {row.sha256 for row in rows if row.skipped_reason is None}


def list_images(session: Session, job_id: int | None, after_id: int = 0, limit: int = 100) -> list[DocumentImage]:
    """Up to `limit` of run `job_id`'s images with id > `after_id`, in id order (the order they were found)."""
    return list(
        session.scalars(
            select(DocumentImage)
            .where(DocumentImage.job_id == job_id, DocumentImage.id > after_id)
            .order_by(DocumentImage.id)
            .limit(limit)
        )
    )


def get_image(session: Session, job_id: int | None, image_id: int) -> DocumentImage | None:
    return session.scalar(select(DocumentImage).where(DocumentImage.job_id == job_id, DocumentImage.id == image_id))


def image_bytes(session: Session, image: DocumentImage) -> bytes:
    """A stored image's bytes."""
    data = io.BytesIO()
    blob_store(session).download_to(image_key(image.document_id, image.job_id, image.sha256), data)
    return data.getvalue()
