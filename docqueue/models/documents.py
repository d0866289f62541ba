"""Uploaded documents, their pages' text, upload idempotency keys, and stored file chunks."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from docqueue.models.base import Base, sql_in
from docqueue.statuses import DocumentStatus, OcrStatus


class Document(Base):
    __tablename__ = "documents"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    filename: Mapped[str] = mapped_column(String(1024))
    # As declared by the uploader; `detected_type` is what `inspect` found in the bytes.
    content_type: Mapped[str] = mapped_column(String(255))
    detected_type: Mapped[str | None] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    #: The import run (`docqueue ingest`, a folder upload) that added it; None for a single upload.
    ingest_run_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("ingest_runs.id", ondelete="SET NULL"))
    page_count: Mapped[int | None] = mapped_column(Integer)
    # Pages whose text `extract_text` cut at MAX_PAGE_TEXT_CHARS (they had more).
    text_truncated_pages: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    # The per-document budgets the newest run reached, by what they cut ("text", "chunks", "embed", "enrich"):
    # {"setting", "limit", "message"} each (see `docqueue/budgets.py`).
    budget_cuts: Mapped[dict] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    status: Mapped[str] = mapped_column(String(16), server_default=text(f"'{DocumentStatus.PENDING}'"))
    progress: Mapped[int] = mapped_column(SmallInteger, server_default=text("0"))
    error: Mapped[str | None] = mapped_column(Text)
    ocr_status: Mapped[str] = mapped_column(String(16), server_default=text(f"'{OcrStatus.UNKNOWN}'"))
    ocr_error: Mapped[str | None] = mapped_column(Text)
    ocr_completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Named by the upload: where to POST when this document ends (else the owner's `callback_url`).
    callback_url: Mapped[str | None] = mapped_column(String(2048))
    # The run whose outputs readers see: the last one that completed. A new run replaces them only when it completes.
    results_job_id: Mapped[int | None] = mapped_column(
        ForeignKey("document_queue.id", ondelete="SET NULL", use_alter=True, name="documents_results_job_fk")
    )
    # `current_stage` (the newest run's stage) is attached in `queue.py`: it selects over `QueueItem`.

    __table_args__ = (
        CheckConstraint(sql_in("status", DocumentStatus), name="documents_status_valid"),
        CheckConstraint(sql_in("ocr_status", OcrStatus), name="documents_ocr_status_valid"),
        CheckConstraint("progress BETWEEN 0 AND 100", name="documents_progress_percent"),
        Index("documents_owner_created_idx", "owner_id", text("created_at DESC"), text("id DESC")),
        # Ingest dedupes each batch against the owner's documents by content.
        Index("documents_owner_sha256_idx", "owner_id", "sha256"),
        # The cleanup keeps every run a document shows.
        Index("documents_results_job_idx", "results_job_id"),
    )


class DocumentPage(Base):
    """The text of one page in one run: its text layer (`extract_text`), or what OCR read (`ocr`)."""

    __tablename__ = "document_pages"

    # The run (queue item) that wrote it: a reprocess writes a new set, shown once that run completes.
    job_id: Mapped[int] = mapped_column(
        ForeignKey("document_queue.id", ondelete="CASCADE", name="document_pages_job_fk"), primary_key=True
    )
    page_number: Mapped[int] = mapped_column(Integer, primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"))
    ocr: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    # Whether extract_text cut the page's text at MAX_PAGE_TEXT_CHARS (it had more).
    text_cut: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    # (Declared after `ocr` and `text_cut`: inside the class body this name hides sqlalchemy's `text`.)
    text: Mapped[str] = mapped_column(Text)
    char_count: Mapped[int] = mapped_column(Integer)
    # OCR'd words as [x0, y0, x1, y1, word] in PDF points of the upright page, for the searchable PDF.
    ocr_words: Mapped[list | None] = mapped_column(JSONB)
    # Degrees (clockwise) the page was turned to read upright, from Tesseract's orientation detection.
    ocr_rotation: Mapped[int | None] = mapped_column(SmallInteger)
    # Why the page has no text although it may show some: its contents could not be read (a broken content
    # stream). The page is skipped, not the document, and OCR does not try it.
    note: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("document_pages_document_idx", "document_id"),)


class IdempotencyKey(Base):
    """The answer given to an upload sent with an `Idempotency-Key`, replayed to a retry within 24 h."""

    __tablename__ = "idempotency_keys"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    # What the first request sent (file, name, type, priority): a different request under the same key is refused.
    request_sha256: Mapped[str] = mapped_column(String(64))
    document_id: Mapped[int | None] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"))
    response_status: Mapped[int | None] = mapped_column(SmallInteger)
    response_body: Mapped[dict | None] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (Index("idempotency_keys_created_idx", "created_at"),)


class BlobChunk(Base):
    """One slice of a stored file; the Postgres blob store streams these."""

    __tablename__ = "blob_chunks"

    blob_key: Mapped[str] = mapped_column(String(255), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)
