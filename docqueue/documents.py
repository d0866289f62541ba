"""The document row: accepting an upload (its name, type and priority checked), reading it back, and the
facts the stages record on it (type, page count, OCR status, text summary).

Queue state is the queue service's business, a run's outputs `docqueue.results`'s (pages in
`results/pages.py`), the API's JSON the web's (`web/document_json.py`). Stage facts are written by the
worker inside a transaction that holds the job's lease (see `DocumentQueueService.hold_lease`).
"""

from __future__ import annotations

import re
import unicodedata
from typing import BinaryIO

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from docqueue.budgets import BudgetCut
from docqueue.models import Document
from docqueue.settings import get_settings
from docqueue.statuses import OcrStatus
from docqueue.storage import blob_store, original_file_key
from docqueue.text_cleaning import shown_name

MAX_FILENAME_CHARS = 255
MAX_CONTENT_TYPE_CHARS = 255
MIN_PRIORITY, MAX_PRIORITY = 0, 100
#: A priority as a form or the API may give it: ASCII digits only (`int()` also reads `１０` and `٣`).
_PRIORITY_TEXT = re.compile(r"[+-]?[0-9]{1,4}")


class UploadRejected(ValueError):
    """The upload cannot become a document; the message says why."""


def upload_too_large_message(limit_bytes: int) -> str:
    """What to tell someone whose upload exceeded the limit (MAX_UPLOAD_MB)."""
    mb = 1024 * 1024
    limit = f"{limit_bytes // mb} MB" if limit_bytes >= mb else f"{limit_bytes} byte"
    return f"the upload is larger than the {limit} limit (MAX_UPLOAD_MB); nothing was stored"


def validate_priority(raw: str | int | None) -> int | None:
    """Parse a caller-given priority; None means "derive it from the file size"."""
    if raw is None or raw == "":
        return None
    wrong = UploadRejected(f"priority must be a whole number from {MIN_PRIORITY} to {MAX_PRIORITY}")
    if isinstance(raw, bool) or not isinstance(raw, int | str):
        raise wrong
    if isinstance(raw, str):
        if not _PRIORITY_TEXT.fullmatch(raw.strip()):
            raise wrong
        raw = int(raw)
    if not MIN_PRIORITY <= raw <= MAX_PRIORITY:
        raise wrong
    return raw


def clean_filename(filename: str | None) -> str:
    """The name to store and show for an upload: its last path part, trimmed; UploadRejected if there is none.

    A NUL byte is refused (no honest client sends one); other control
    characters, line separators, lone surrogates and invisible format
    characters are removed, bidirectional overrides among them
    (`invoice\\u202efdp.exe` shows as `invoiceexe.pdf`).
    """
    if "\x00" in (filename or ""):
        raise UploadRejected("the file name contains a NUL byte")
    name = shown_name(filename or "").replace("\\", "/").rsplit("/", 1)[-1].strip()
    if not name:
        raise UploadRejected("the upload has no file name")
    return name[:MAX_FILENAME_CHARS]


def clean_content_type(content_type: str | None) -> str:
    """The declared type of an upload as stored; UploadRejected if it is too long or has control characters."""
    content_type = content_type or "application/octet-stream"
    if len(content_type) > MAX_CONTENT_TYPE_CHARS:
        raise UploadRejected(f"the file's Content-Type is longer than {MAX_CONTENT_TYPE_CHARS} characters")
    if any(unicodedata.category(char) == "Cc" for char in content_type):
        raise UploadRejected("the file's Content-Type contains control characters")
    return content_type


class _Restored:
    """A stream whose first byte was read to look at it, handed on whole (reads as full as the original's)."""

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        self._head, self._rest = head, rest

    def read(self, size: int = -1) -> bytes:
        head, self._head = self._head, b""
        if size is None or size < 0:
            return head + self._rest.read()
        return head + self._rest.read(size - len(head)) if size > len(head) else head


def non_empty(stream: BinaryIO) -> BinaryIO:
    """`stream` whole, after checking it has a byte; UploadRejected("the file is empty") before anything is stored.

    Refusing an empty file before its row is inserted keeps a refused upload from using up a document id.
    """
    head = stream.read(1)
    if not head:
        raise UploadRejected("the file is empty")
    return _Restored(head, stream)


def create_document(
    session: Session,
    owner_id: int,
    filename: str | None,
    content_type: str | None,
    stream: BinaryIO,
) -> Document:
    """Store an upload's bytes and its document row in the caller's transaction; UploadRejected if empty."""
    document = Document(
        owner_id=owner_id,
        filename=clean_filename(filename),
        content_type=clean_content_type(content_type),
        size_bytes=0,
        sha256="",
    )
    session.add(document)
    session.flush()
    stored = blob_store(session).put(original_file_key(document.id), stream)
    if stored.size == 0:
        raise UploadRejected("the file is empty")
    document.size_bytes = stored.size
    document.sha256 = stored.sha256
    session.flush()
    return document


def get_document(session: Session, owner_id: int, document_id: int) -> Document | None:
    """The owner's document, or None: another user's document is as good as missing."""
    return session.scalar(select(Document).where(Document.id == document_id, Document.owner_id == owner_id))


# -- stage results (written by workers under a held lease) -------------------


def detected_type(session: Session, document_id: int) -> str | None:
    """The type `inspect` found in the document's bytes ("pdf", "png", ...); None before it ran."""
    return session.execute(text("SELECT detected_type FROM documents WHERE id = :id"), {"id": document_id}).scalar()


def record_inspection(session: Session, document_id: int, detected_type: str, page_count: int) -> None:
    """Note what `inspect` found; a new run starts with no budget cuts (its stages mark those they reach)."""
    session.execute(
        text(
            "UPDATE documents SET detected_type = :detected_type, page_count = :page_count, updated_at = now(), "
            "budget_cuts = '{}' WHERE id = :document_id"
        ),
        {"document_id": document_id, "detected_type": detected_type, "page_count": page_count},
    )


def record_ocr_status(session: Session, document_id: int, status: str, error: str | None = None) -> None:
    """Set the document's `ocr_status` (and `ocr_error`; `ocr_completed_at` when it completes)."""
    session.execute(
        text(
            f"""
            UPDATE documents SET ocr_status = CAST(:status AS text), ocr_error = :error, updated_at = now(),
                   ocr_completed_at = CASE WHEN CAST(:status AS text) = '{OcrStatus.COMPLETED}' THEN now()
                                      ELSE ocr_completed_at END
            WHERE id = :document_id
            """
        ),
        {"document_id": document_id, "status": status, "error": error},
    )


def record_text_summary(
    session: Session, document_id: int, job_id: int, page_count: int, budget_cut: BudgetCut | None = None
) -> None:
    """Note the page count, whether any page of run `job_id` has no text (then OCR is needed), how many pages
    had their text cut at MAX_PAGE_TEXT_CHARS, and the document's text budget cut (`budget_cut`), if any.

    Pages the document's budget left without text are not for OCR: they were never read.
    """
    session.execute(
        text(
            f"""
            UPDATE documents SET page_count = :page_count, updated_at = now(),
                   ocr_status = CASE WHEN EXISTS (SELECT 1 FROM document_pages
                                                  WHERE job_id = :job_id AND text = '' AND NOT ocr
                                                        AND NOT text_cut AND note IS NULL)
                                THEN '{OcrStatus.NEEDED}' ELSE '{OcrStatus.NOT_NEEDED}' END,
                   text_truncated_pages = (SELECT count(*) FROM document_pages
                                           WHERE job_id = :job_id AND text_cut AND char_count >= :max_page_chars),
                   budget_cuts = CASE WHEN CAST(:cut AS jsonb) IS NULL THEN budget_cuts - 'text'
                                 ELSE budget_cuts || jsonb_build_object('text', CAST(:cut AS jsonb)) END
            WHERE id = :document_id
            """
        ),
        {
            "document_id": document_id,
            "job_id": job_id,
            "page_count": page_count,
            "max_page_chars": get_settings().max_page_text_chars,
            "cut": budget_cut.as_json() if budget_cut else None,
        },
    )
