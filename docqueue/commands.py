"""What a person or program can ask docqueue to do, for views, the CLI and the admin page alike.

Each command validates, changes rows in one transaction, commits, and then
wakes the dispatcher so the work starts now rather than at the next clock
tick. The wake-up never fails the command: its work is already committed,
and a caller that saw an error would retry and do it twice. The upload
commands take how to wake it (`wake`): at once in the caller's session by
default; the web passes one that runs after its answer.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import BinaryIO, Callable

from sqlalchemy.orm import Session

from docqueue import quotas
from docqueue.accounts.audit import record_audit
from docqueue.dispatch.dispatcher import nudge_dispatcher
from docqueue.documents import UploadRejected, clean_content_type, clean_filename, create_document, non_empty
from docqueue.jobs import RequeueResult
from docqueue.models import Document, User
from docqueue.pipeline import STAGE_NAMES, stage_named
from docqueue.queue import DocumentQueueService, idempotency, owner_retries


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
    DocumentQueueService(session).enqueue(document.id, STAGE_NAMES, "process", priority)
    return document


@dataclass(frozen=True)
class Upload:
    """One file of a request: its name and type as sent, and its bytes."""

    filename: str | None
    content_type: str | None
    stream: BinaryIO


def submit_all(
    session: Session,
    owner_id: int,
    uploads: list[Upload],
    priority: int | None = None,
    before_commit: Callable[[list[Document]], None] | None = None,
    callback_url: str | None = None,
    wake: Callable[[Session], None] = nudge_dispatcher,
) -> list[Document]:
    """Store and queue every upload of one request in one transaction, commit; then `wake(session)`.

    All or nothing: names and types are checked before anything is stored,
    and an upload refused while storing (an empty file) rolls back the
    others too, so a client's retry never makes duplicates. Raises
    UploadRejected (nothing stored); with several files its message names
    the file. The owner's quotas are checked in the same transaction
    (`docqueue/quotas.py`): DailyPageQuotaUsedUp before anything is stored,
    StorageQuotaExceeded once the files' sizes are known (both UploadRejected). The documents come back detached, holding the values they had
    inside the transaction: an answer built from them needs no query after
    the commit, which a lost connection could fail after the work is done.
    `before_commit(documents)` runs in the same transaction, last.
    `callback_url` (already validated) hears when each document ends.
    """

    def rejected(upload: Upload, rejection: UploadRejected) -> UploadRejected:
        if len(uploads) == 1:
            return rejection
        shown = "".join(char for char in upload.filename or "" if char.isprintable())[:100] or "a file"
        return UploadRejected(f"{shown}: {rejection}; nothing was stored")

    checked = []
    for upload in uploads:
        try:
            clean_filename(upload.filename)
            clean_content_type(upload.content_type)
            # An empty file is refused before any row is inserted: a refusal uses up no document id.
            checked.append(replace(upload, stream=non_empty(upload.stream)))
        except UploadRejected as rejection:
            raise rejected(upload, rejection) from None
    uploads = checked
    documents = []
    try:
        quotas.check_pages_left(session, session.get(User, owner_id))
        for upload in uploads:
            try:
                documents.append(
                    queue_upload(
                        session, owner_id, upload.filename, upload.content_type, upload.stream, priority, callback_url
                    )
                )
            except UploadRejected as rejection:
                raise rejected(upload, rejection) from None
        quotas.check_storage(session, owner_id, sum(document.size_bytes for document in documents))
        for document in documents:
            session.refresh(document)
        if before_commit is not None:
            before_commit(documents)
        for document in documents:
            session.expunge(document)
        session.commit()
    except BaseException:
        session.rollback()
        raise
    wake(session)
    return documents


def submit(
    session: Session,
    owner_id: int,
    filename: str | None,
    content_type: str | None,
    stream: BinaryIO,
    priority: int | None = None,
    callback_url: str | None = None,
    wake: Callable[[Session], None] = nudge_dispatcher,
) -> Document:
    """Store one upload, queue it and commit; then wake the dispatcher (see `submit_all`).

    Raises UploadRejected (nothing stored) for an upload that cannot be a document.
    """
    upload = Upload(filename, content_type, stream)
    return submit_all(session, owner_id, [upload], priority, callback_url=callback_url, wake=wake)[0]


@dataclass(frozen=True)
class UploadAnswer:
    """What the API answers an upload: its status code and body, and whether it is a stored one given again."""

    status: int
    body: dict
    replayed: bool = False


def submit_once(
    session: Session,
    owner_id: int,
    key: str,
    upload: Upload,
    priority: int | None,
    raw_priority: str | None,
    callback_url: str | None = None,
    wake: Callable[[Session], None] = nudge_dispatcher,
) -> UploadAnswer:
    """`submit` under an Idempotency-Key: the first request with `key` stores, a retry gets its answer again.

    Raises UploadRejected as `submit` does (the key stays free), and the
    `idempotency` errors for a key reused for another request or still in
    use by a request being stored. See `docqueue.queue.idempotency`.
    """
    fields = {
        "filename": upload.filename,
        "type": upload.content_type,
        "priority": raw_priority,
        "callback_url": callback_url,
    }
    try:
        stored = idempotency.claim_key(session, owner_id, key, idempotency.request_fingerprint(fields, upload.stream))
    except BaseException:
        session.rollback()
        raise
    if stored is not None:
        session.rollback()
        return UploadAnswer(stored.status, stored.body, replayed=True)

    def keep_answer(documents: list[Document]) -> None:
        answer = idempotency.StoredAnswer(202, {"id": documents[0].id, "status": documents[0].status})
        idempotency.record_answer(session, owner_id, key, documents[0].id, answer)

    (document,) = submit_all(session, owner_id, [upload], priority, keep_answer, callback_url, wake)
    return UploadAnswer(202, {"id": document.id, "status": document.status})


def reprocess(session: Session, document_id: int, operation: str = "reprocess") -> None:
    """Run a document through the whole pipeline again; AlreadyQueued while a run is still live.

    The new run's outputs replace the old ones when it completes. Operation
    `ocr` is the run a user asks for to have a document read whose owner has
    background OCR off: its `ocr` stage runs regardless.
    """
    try:
        DocumentQueueService(session).enqueue(document_id, STAGE_NAMES, operation)
        session.commit()
    except BaseException:
        session.rollback()
        raise
    nudge_dispatcher(session)


def start_ocr(session: Session, document_id: int) -> None:
    """Run the document again with OCR on, whatever the owner's background OCR setting; AlreadyQueued if live."""
    reprocess(session, document_id, "ocr")


def retry_failed(session: Session, document_id: int) -> str:
    """Retry the document's failed run from the stage that failed, keeping what it wrote; return that stage.

    NothingToRetry when its last run has not failed.
    """
    try:
        stage = owner_retries.retry_failed_run(session, document_id)
        session.commit()
    except BaseException:
        session.rollback()
        raise
    nudge_dispatcher(session)
    return stage


def retry_stage(session: Session, document_id: int, stage_name: str) -> None:
    """Run one failed optional stage of the document's completed run again, alone, keeping everything else.

    KeyError for a stage that does not exist; NothingToRetry for one that is
    not optional (its failure failed the run: retry that instead) or did not fail.
    """
    stage = stage_named(stage_name)
    if not stage.optional:
        raise owner_retries.NothingToRetry(
            f"stage {stage.name} is not optional: a failure there fails the document, which is retried whole"
        )
    try:
        owner_retries.retry_stage(session, document_id, stage.name)
        session.commit()
    except BaseException:
        session.rollback()
        raise
    nudge_dispatcher(session)


def requeue_failed(session: Session, owner_id: int | None = None, actor: User | None = None) -> RequeueResult:
    """Retry documents whose last run failed for a reason that can pass; report those left and why.

    Audited as `actor`'s action (None: the command line).
    """
    result = DocumentQueueService(session).requeue_failed(owner_id)
    skipped = sum(count for _, count in result.skipped)
    record_audit(session, actor, "queue.requeue_failed", result.requeued, f"{skipped} permanent failures left")
    session.commit()
    if result.requeued:
        nudge_dispatcher(session)
    return result
