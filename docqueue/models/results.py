"""Results of the later stages (migration 0006), keyed by run like `document_pages`; and run-end callbacks."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from docqueue.models.base import Base, sql_in
from docqueue.statuses import CallbackStatus

# `embedding` columns are pgvector's `vector` where the extension exists, else
# `real[]`; they are not mapped here and only `docqueue/results/vectors.py` touches them.


def _run_fk() -> ForeignKey:
    return ForeignKey("document_queue.id", ondelete="CASCADE")


class DocumentImage(Base):
    """One image object of a run (its bytes in the blob store once per sha256), or one skipped with its reason."""

    __tablename__ = "document_images"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    job_id: Mapped[int] = mapped_column(_run_fk())
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"))
    # The PDF object: one row per image object (truth.json's `image_xrefs`), however many pages show it.
    xref: Mapped[int] = mapped_column(Integer)
    # The first page the image appears on.
    page_number: Mapped[int] = mapped_column(Integer)
    # Of the stored bytes; of the raw PDF stream for an image skipped without decoding it.
    sha256: Mapped[str] = mapped_column(String(64))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    format: Mapped[str] = mapped_column(String(16))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    skipped_reason: Mapped[str | None] = mapped_column(Text)
    embedding_model: Mapped[str | None] = mapped_column(String(255))

    __table_args__ = (
        Index("document_images_object_idx", "job_id", "xref", unique=True),
        Index("document_images_document_idx", "document_id"),
    )


class DocumentChunk(Base):
    """An overlapping slice of a run's text, with the pages it spans."""

    __tablename__ = "document_chunks"

    job_id: Mapped[int] = mapped_column(_run_fk(), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"))
    text: Mapped[str] = mapped_column(Text)
    page_start: Mapped[int] = mapped_column(Integer)
    page_end: Mapped[int] = mapped_column(Integer)
    embedding_model: Mapped[str | None] = mapped_column(String(255))

    __table_args__ = (Index("document_chunks_document_idx", "document_id"),)


class DocumentEnrichment(Base):
    """An answer from the chat provider about a run's text or one of its images."""

    __tablename__ = "document_enrichments"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    job_id: Mapped[int] = mapped_column(_run_fk())
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    image_id: Mapped[int | None] = mapped_column(ForeignKey("document_images.id", ondelete="CASCADE"))
    model: Mapped[str] = mapped_column(String(255))
    answer: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        CheckConstraint("kind IN ('product_discovery', 'vision_description')", name="document_enrichments_kind_valid"),
        Index("document_enrichments_subject_idx", "job_id", "kind", text("COALESCE(image_id, 0)"), unique=True),
        Index("document_enrichments_document_idx", "document_id"),
    )


class CallbackDelivery(Base):
    """The POST telling a callback URL that a run of a document ended, with its attempts."""

    __tablename__ = "callback_deliveries"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("document_queue.id", ondelete="CASCADE"), unique=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(String(2048))
    # The exact bytes signed and sent, so every attempt carries the same body and signature.
    payload: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), server_default=text(f"'{CallbackStatus.PENDING}'"))
    attempts: Mapped[int] = mapped_column(SmallInteger, server_default=text("0"))
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_status_code: Mapped[int | None] = mapped_column(SmallInteger)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Set while a sender is POSTing it (the take lease): counts against its owner's CALLBACK_USER_IN_FLIGHT.
    sending_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint(sql_in("status", CallbackStatus), name="callback_deliveries_status_valid"),
        Index(
            "callback_deliveries_due_idx",
            "next_attempt_at",
            postgresql_where=text(f"status = '{CallbackStatus.PENDING}'"),
        ),
        Index("callback_deliveries_document_idx", "document_id", text("id DESC")),
    )
