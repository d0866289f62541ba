"""Turning uploaded files into queued documents, for the API and the browser form alike."""

from __future__ import annotations

from werkzeug.datastructures import FileStorage

from docqueue.documents import create_document
from docqueue.models import Document
from docqueue.queue.dispatcher import nudge_dispatcher
from web.extensions import db


def submit_upload(owner_id: int, upload: FileStorage, priority: int | None) -> Document:
    """Store one upload and queue it, committed; then nudge the dispatcher.

    Raises UploadRejected (nothing stored) for an upload that cannot be a document.
    """
    try:
        document = create_document(db.session, owner_id, upload.filename, upload.mimetype, upload.stream, priority)
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    nudge_dispatcher(db.session)
    return document
