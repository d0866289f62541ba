"""What a person or program can ask docqueue to do, for views, the CLI and the admin page alike.

Each command validates, changes rows in one transaction, commits, and then
wakes the dispatcher so the work starts now rather than at the next clock
tick. The wake-up never fails the command: its work is already committed,
and a caller that saw an error would retry and do it twice.
"""

from __future__ import annotations

from typing import BinaryIO

from sqlalchemy.orm import Session

from docqueue.documents import create_document
from docqueue.models import Document
from docqueue.pipeline import first_stage
from docqueue.queue import DocumentQueueService, RequeueResult
from docqueue.queue.dispatcher import nudge_dispatcher


def queue_upload(
    session: Session,
    owner_id: int,
    filename: str | None,
    content_type: str | None,
    stream: BinaryIO,
    priority: int | None = None,
    callback_url: str | None = None,
) -> Document:
    """Store an upload and queue it from the first stage, in the caller's transaction (no commit).

    `callback_url` (already validated) is POSTed to when the document ends.
    """
    document = create_document(session, owner_id, filename, content_type, stream)
    document.callback_url = callback_url
    DocumentQueueService(session).enqueue(document.id, first_stage().name, "process", priority)
    return document


def submit(
    session: Session,
    owner_id: int,
    filename: str | None,
    content_type: str | None,
    stream: BinaryIO,
    priority: int | None = None,
    callback_url: str | None = None,
) -> Document:
    """Store an upload, queue it and commit; then wake the dispatcher.

    Raises UploadRejected (nothing stored) for an upload that cannot be a document.
    """
    try:
        document = queue_upload(session, owner_id, filename, content_type, stream, priority, callback_url)
        session.commit()
    except BaseException:
        session.rollback()
        raise
    nudge_dispatcher(session)
    return document


def reprocess(session: Session, document_id: int, operation: str = "reprocess") -> None:
    """Run a document through the whole pipeline again; AlreadyQueued while a run is still live.

    The new run's outputs replace the old ones when it completes. Operation
    `ocr` is the run a user asks for to have a document read whose owner has
    background OCR off: its `ocr` stage runs regardless.
    """
    try:
        DocumentQueueService(session).enqueue(document_id, first_stage().name, operation)
        session.commit()
    except BaseException:
        session.rollback()
        raise
    nudge_dispatcher(session)


def start_ocr(session: Session, document_id: int) -> None:
    """Run the document again with OCR on, whatever the owner's background OCR setting; AlreadyQueued if live."""
    reprocess(session, document_id, "ocr")


def requeue_failed(session: Session, owner_id: int | None = None) -> RequeueResult:
    """Retry documents whose last run failed for a reason that can pass; report those left and why."""
    result = DocumentQueueService(session).requeue_failed(owner_id)
    session.commit()
    if result.requeued:
        nudge_dispatcher(session)
    return result
