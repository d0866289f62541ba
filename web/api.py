"""The JSON API under `/api`. Every call needs `Authorization: Bearer <token>`."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, g, jsonify, request
from werkzeug.exceptions import NotFound, RequestEntityTooLarge

from docqueue import commands
from docqueue.documents import (
    UploadRejected,
    document_as_dict,
    get_document,
    list_documents,
    page_texts,
    upload_too_large_message,
    validate_priority,
)
from docqueue.queue import AlreadyQueued, DocumentQueueService
from docqueue.queue.attempts import attempt_history
from docqueue.queue.dispatcher import process_document_queue
from web.auth import admin_required, api_error, token_required
from web.extensions import db

bp = Blueprint("api", __name__, url_prefix="/api")


@bp.errorhandler(RequestEntityTooLarge)
def too_large(error):
    return api_error(413, upload_too_large_message(current_app.config["MAX_CONTENT_LENGTH"]))


@bp.post("/documents")
@token_required
def upload_document():
    """Accept one file (multipart field `file`, optional `priority`); answer 202 pending."""
    upload = request.files.get("file")
    if upload is None:
        return api_error(400, "no file: send the document as multipart form field 'file'")
    try:
        priority = validate_priority(request.form.get("priority"))
        document = commands.submit(db.session, g.user.id, upload.filename, upload.mimetype, upload.stream, priority)
    except UploadRejected as rejection:
        return api_error(400, str(rejection))
    return jsonify(id=document.id, status=document.status), 202


@bp.get("/documents")
@token_required
def documents_index():
    limit = min(request.args.get("limit", 100, type=int) or 100, 1000)
    return jsonify(documents=[document_as_dict(d) for d in list_documents(db.session, g.user.id, limit)])


def owned_document(document_id: int):
    """The caller's document; 404 for a missing one and for another user's alike."""
    document = get_document(db.session, g.user.id, document_id)
    if document is None:
        abort(404, description=f"no document {document_id}")
    return document


@bp.errorhandler(NotFound)
def not_found(error):
    return api_error(404, error.description)


@bp.get("/documents/<int:document_id>")
@token_required
def document_detail(document_id: int):
    document = owned_document(document_id)
    return jsonify({**document_as_dict(document), "attempts": attempt_history(db.session, document.id)})


@bp.get("/documents/<int:document_id>/pages")
@token_required
def document_pages(document_id: int):
    """The extracted text, page by page."""
    document = owned_document(document_id)
    pages = page_texts(db.session, document.id)
    return jsonify(document_id=document.id, pages=[{"page": n, "text": t} for n, t in pages])


@bp.post("/documents/<int:document_id>/reprocess")
@token_required
def reprocess_document(document_id: int):
    """Run the document through the pipeline again; 409 while a run is still live."""
    document = owned_document(document_id)
    try:
        commands.reprocess(db.session, document.id)
    except AlreadyQueued as conflict:
        return api_error(409, str(conflict))
    return jsonify(id=document.id, status="pending"), 202


@bp.get("/queue/stats")
@token_required
def queue_stats():
    return jsonify(DocumentQueueService(db.session).get_queue_stats())


@bp.post("/queue/requeue-failed")
@admin_required
def requeue_failed():
    """Documents whose last run failed for a reason that can pass go back to pending; the rest are listed."""
    result = commands.requeue_failed(db.session)
    skipped = [{"reason": reason, "documents": count} for reason, count in result.skipped]
    return jsonify(requeued=result.requeued, skipped=skipped)


@bp.post("/queue/process")
@admin_required
def process_queue():
    """The cron endpoint: run the dispatcher once and report what it did."""
    return jsonify(process_document_queue(db.session).as_dict())
