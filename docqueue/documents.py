"""Documents: accepting uploads, reading them back, and storing stage results.

Queue state is the queue service's business; this module owns the rows a
user sees about their files. Stage results are written by the worker inside
a transaction that holds the job's lease (see `DocumentQueueService.hold_lease`).
"""

from __future__ import annotations

import json
import re
import unicodedata
from typing import BinaryIO

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from docqueue.budgets import BudgetCut
from docqueue.models import Document, DocumentPage
from docqueue.queue.run_outputs import results_run
from docqueue.settings import get_settings
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


def document_as_dict(document: Document) -> dict:
    """The JSON shape of a document in the API."""

    def iso(value):
        return value.isoformat() if value else None

    return {
        "id": document.id,
        "filename": document.filename,
        "content_type": document.content_type,
        "detected_type": document.detected_type,
        "size": document.size_bytes,
        "sha256": document.sha256,
        "status": document.status,
        "stage": document.current_stage,
        "progress": document.progress,
        "page_count": document.page_count,
        # Pages whose text was cut at MAX_PAGE_TEXT_CHARS (a page drawing millions of characters).
        "text_truncated_pages": document.text_truncated_pages,
        # The per-document budgets (MAX_DOCUMENT_TEXT_CHARS, ...) the newest run reached: what each cut.
        "budget_cuts": document.budget_cuts or {},
        "error": document.error,
        "ocr_status": document.ocr_status,
        "ocr_error": document.ocr_error,
        "ocr_completed_at": iso(document.ocr_completed_at),
        "created_at": iso(document.created_at),
        "updated_at": iso(document.updated_at),
        "completed_at": iso(document.completed_at),
    }


def page_texts(session: Session, document_id: int) -> list[tuple[int, str]]:
    """(page number, text) of every page a reader sees (see `run_outputs.results_run`), in order."""
    return [(page.page_number, page.text) for page in result_pages(session, document_id)]


def result_pages(session: Session, document_id: int, after: int = 0, limit: int | None = None) -> list[DocumentPage]:
    """The pages a reader sees, numbered after `after`, at most `limit`: those of the run `results_run` names."""
    run = results_run(session, document_id)
    query = (
        select(DocumentPage)
        .where(DocumentPage.job_id == run.job_id, DocumentPage.page_number > after)
        .order_by(DocumentPage.page_number)
        .limit(limit)
    )
    return list(session.scalars(query))


def page_notes(session: Session, document_id: int) -> list[tuple[int, str]]:
    """(page number, note) of the pages a reader sees whose contents could not be read, in order."""
    run = results_run(session, document_id)
    query = (
        select(DocumentPage.page_number, DocumentPage.note)
        .where(DocumentPage.job_id == run.job_id, DocumentPage.note.is_not(None))
        .order_by(DocumentPage.page_number)
    )
    return [(number, note) for number, note in session.execute(query)]


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


def save_page_texts(
    session: Session, document_id: int, job_id: int, pages: list[tuple[int, str, bool, str | None]]
) -> None:
    """Upsert a batch of run `job_id`'s pages (number, text, whether the text was cut, why its contents could
    not be read or None) in one statement: an attempt that redoes a page rewrites it."""
    statement = insert(DocumentPage).values(
        [
            {
                "job_id": job_id,
                "document_id": document_id,
                "page_number": number,
                "text": page_text,
                "char_count": len(page_text),
                "text_cut": cut,
                "note": note,
            }
            for number, page_text, cut, note in pages
        ]
    )
    session.execute(
        statement.on_conflict_do_update(
            index_elements=[DocumentPage.job_id, DocumentPage.page_number],
            set_={
                "text": statement.excluded.text,
                "char_count": statement.excluded.char_count,
                "text_cut": statement.excluded.text_cut,
                "note": statement.excluded.note,
            },
        )
    )


def save_ocr_pages(session: Session, job_id: int, pages: list[dict]) -> None:
    """Store what OCR read on a batch of run `job_id`'s pages, in one statement, flagging them `ocr`.

    Each of `pages` has `page_number`, `text`, `ocr_words` and `ocr_rotation`.
    """
    session.execute(
        text(
            """
            UPDATE document_pages p SET text = v.text, char_count = length(v.text), ocr = true,
                   ocr_words = v.ocr_words, ocr_rotation = v.ocr_rotation
            FROM jsonb_to_recordset(CAST(:pages AS jsonb))
                 AS v(page_number int, text text, ocr_words jsonb, ocr_rotation int)
            WHERE p.job_id = :job_id AND p.page_number = v.page_number
            """
        ),
        {"job_id": job_id, "pages": json.dumps(pages)},
    )


def pages_awaiting_ocr(session: Session, job_id: int) -> tuple[list[int], int]:
    """(numbers of run `job_id`'s pages with no text that OCR has not read yet, how many need OCR in all).

    A page whose contents could not be read (it has a `note`) is not for OCR: rendering it fails the same way.
    """
    rows = session.execute(
        text(
            """
            SELECT page_number, ocr FROM document_pages
            WHERE job_id = :job_id AND (ocr OR (text = '' AND NOT text_cut AND note IS NULL)) ORDER BY page_number
            """
        ),
        {"job_id": job_id},
    ).all()
    return [number for number, done in rows if not done], len(rows)


def record_ocr_status(session: Session, document_id: int, status: str, error: str | None = None) -> None:
    """Set the document's `ocr_status` (and `ocr_error`; `ocr_completed_at` when it completes)."""
    session.execute(
        text(
            """
            UPDATE documents SET ocr_status = CAST(:status AS text), ocr_error = :error, updated_at = now(),
                   ocr_completed_at = CASE WHEN CAST(:status AS text) = 'completed' THEN now()
                                      ELSE ocr_completed_at END
            WHERE id = :document_id
            """
        ),
        {"document_id": document_id, "status": status, "error": error},
    )


def text_kept_before(session: Session, job_id: int, checkpoint: int, max_page_chars: int) -> tuple[int, int | None]:
    """(characters run `job_id` kept on pages up to `checkpoint`, the first of them the document's text budget
    cut, if any): where a retried `extract_text` goes on from.

    A page the budget cut kept fewer than `max_page_chars` characters; one cut
    only by MAX_PAGE_TEXT_CHARS kept exactly that many.
    """
    kept, cut_at = session.execute(
        text(
            """
            SELECT coalesce(sum(char_count), 0),
                   min(page_number) FILTER (WHERE text_cut AND char_count < :max_page_chars)
            FROM document_pages WHERE job_id = :job_id AND page_number <= :checkpoint
            """
        ),
        {"job_id": job_id, "checkpoint": checkpoint, "max_page_chars": max_page_chars},
    ).one()
    return kept, cut_at


def record_text_summary(
    session: Session, document_id: int, job_id: int, page_count: int, budget_cut: BudgetCut | None = None
) -> None:
    """Note the page count, whether any page of run `job_id` has no text (then OCR is needed), how many pages
    had their text cut at MAX_PAGE_TEXT_CHARS, and the document's text budget cut (`budget_cut`), if any.

    Pages the document's budget left without text are not for OCR: they were never read.
    """
    session.execute(
        text(
            """
            UPDATE documents SET page_count = :page_count, updated_at = now(),
                   ocr_status = CASE WHEN EXISTS (SELECT 1 FROM document_pages
                                                  WHERE job_id = :job_id AND text = '' AND NOT ocr
                                                        AND NOT text_cut AND note IS NULL)
                                THEN 'needed' ELSE 'not_needed' END,
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
