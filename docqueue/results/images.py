"""Document images: a row per image object, the bytes of each distinct image stored once (by sha256)."""

from __future__ import annotations

import io
from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from docqueue.models import DocumentImage
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


def image_key(document_id: int, sha256: str) -> str:
    """Where an image's bytes live in the blob store."""
    return f"documents/{document_id}/images/{sha256}"


def save_images(
    session: Session, document_id: int, job_id: int, images: list[FoundImage], rows_per_statement: int
) -> None:
    """Store the rows of `images` and the bytes they carry; a retry of the same run rewrites, never duplicates."""
    store = blob_store(session)
    for image in images:
        if image.data is not None:
            store.put(image_key(document_id, image.sha256), io.BytesIO(image.data))
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
        # The same object found again (a retry, or a reprocess before its last step) is this run's now.
        excluded = statement.excluded
        updated = {column: getattr(excluded, column) for column in rows[0] if column not in ("document_id", "xref")}
        session.execute(
            statement.on_conflict_do_update(
                index_elements=[DocumentImage.document_id, DocumentImage.xref],
                set_=updated,
            )
        )


def drop_images_of_older_runs(session: Session, document_id: int, job_id: int) -> None:
    """Remove the image rows an earlier run stored that this run did not find, and bytes no row uses now."""
    gone = set(
        session.scalars(
            delete(DocumentImage)
            .where(DocumentImage.document_id == document_id, DocumentImage.job_id != job_id)
            .returning(DocumentImage.sha256)
        ).all()
    )
    still_used = set(
        session.scalars(
            select(DocumentImage.sha256).where(DocumentImage.document_id == document_id, DocumentImage.sha256.in_(gone))
        ).all()
    )
    store = blob_store(session)
    for sha256 in gone - still_used:
        store.delete(image_key(document_id, sha256))


def list_images(session: Session, document_id: int, after_id: int = 0, limit: int = 100) -> list[DocumentImage]:
    """Up to `limit` of the document's images with id > `after_id`, in id order (the order they were found)."""
    return list(
        session.scalars(
            select(DocumentImage)
            .where(DocumentImage.document_id == document_id, DocumentImage.id > after_id)
            .order_by(DocumentImage.id)
            .limit(limit)
        )
    )


def get_image(session: Session, document_id: int, image_id: int) -> DocumentImage | None:
    return session.scalar(
        select(DocumentImage).where(DocumentImage.document_id == document_id, DocumentImage.id == image_id)
    )


def image_count(session: Session, document_id: int) -> int:
    return session.scalar(select(func.count()).where(DocumentImage.document_id == document_id)) or 0
