"""The JSON API under `/api`. Every call needs `Authorization: Bearer <token>`."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, g, jsonify, request
from werkzeug.exceptions import NotFound, RequestEntityTooLarge

from docqueue.audit import record_audit
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
from docqueue.queue.dashboard import read_dashboard
from docqueue.queue.dispatcher import nudge_dispatcher, process_document_queue
from web.auth import api_error, api_role_required, token_required
from web.extensions import db
from web.submissions import submit_upload

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
        document = submit_upload(g.user.id, upload, priority)
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
    return jsonify(document_as_dict(owned_document(document_id)))


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
        DocumentQueueService(db.session).enqueue(document.id, "reprocess")
        db.session.commit()
    except AlreadyQueued as conflict:
        db.session.rollback()
        return api_error(409, str(conflict))
    nudge_dispatcher(db.session)
    return jsonify(id=document.id, status="pending"), 202


@bp.get("/queue/stats")
@token_required
def queue_stats():
    """The whole queue's counts for operators and admins; a viewer's own jobs' counts for a viewer."""
    owner_id = None if g.user.has_role("operator") else g.user.id
    return jsonify(read_dashboard(db.session, owner_id).as_stats())


@bp.post("/queue/requeue-failed")
@api_role_required("operator")
def requeue_failed():
    """Failed jobs with attempts left go back to pending."""
    requeued = DocumentQueueService(db.session).requeue_failed()
    record_audit(db.session, g.user, "queue.requeue_failed", requeued, "via the API")
    db.session.commit()
    nudge_dispatcher(db.session)
    return jsonify(requeued=requeued)


@bp.post("/queue/process")
@api_role_required("operator")
def process_queue():
    """The cron endpoint: run the dispatcher once and report what it did."""
    return jsonify(process_document_queue(db.session).as_dict())
