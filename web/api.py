"""The JSON API under `/api`. Every call needs `Authorization: Bearer <token>`."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, g, jsonify, request, url_for
from werkzeug.exceptions import NotFound, RequestEntityTooLarge

from docqueue import commands, quotas
from docqueue.ai.breakers import breaker_states
from docqueue.callbacks.urls import CallbackUrlRejected, validate_callback_url
from docqueue.commands import Upload
from docqueue.dispatch.dispatcher import process_document_queue
from docqueue.document_listing import BadListingRequest, ListingRequest, documents_page
from docqueue.document_state import document_state
from docqueue.documents import UploadRejected, get_document, upload_too_large_message, validate_priority
from docqueue.jobs import AlreadyQueued
from docqueue.pipeline import STAGE_NAMES
from docqueue.queue import idempotency, run_outputs, stage_record_reads
from docqueue.queue.attempts import attempt_history
from docqueue.queue.backlog import lane_backlog
from docqueue.queue.dashboard import read_dashboard
from docqueue.queue.owner_retries import NothingToRetry
from docqueue.results.pages import page_notes, result_pages
from web.auth import api_error, api_role_required, token_required
from web.dispatch_waker import wake_dispatcher
from web.document_json import document_as_dict
from web.downloads import send_searchable_pdf
from web.extensions import db
from web.pagination import ListWindow

bp = Blueprint("api", __name__, url_prefix="/api")


@bp.errorhandler(RequestEntityTooLarge)
def too_large(error):
    return api_error(413, upload_too_large_message(current_app.config["MAX_CONTENT_LENGTH"]))


@bp.post("/documents")
@token_required
def upload_document():
    """Accept one file (multipart field `file`, optional `priority` and `callback_url`); answer 202 pending.

    The whole request is checked before anything is stored. With an
    `Idempotency-Key` header, a retry within 24 h gets the first answer
    and stores nothing (see `docqueue.queue.idempotency`).
    """
    files = request.files.getlist("file")
    if not files:
        return api_error(400, "no file: send the document as multipart form field 'file'")
    if len(files) > 1:
        return api_error(400, f"send one file per request: this one has {len(files)} 'file' fields; nothing was stored")
    upload = Upload(files[0].filename, files[0].mimetype, files[0].stream)
    raw_priority, raw_key = request.form.get("priority"), request.headers.get("Idempotency-Key")
    try:
        priority = validate_priority(raw_priority)
        callback_url = validate_callback_url(request.form.get("callback_url"))
        if raw_key is None:
            (document,) = commands.submit_all(
                db.session, g.user.id, [upload], priority, callback_url=callback_url, wake=wake_dispatcher
            )
            # Values read inside the transaction: no query after the commit (see `submit_all`).
            return jsonify(id=document.id, status=document.status), 202
        key = idempotency.validate_key(raw_key)
        answer = commands.submit_once(
            db.session, g.user.id, key, upload, priority, raw_priority, callback_url, wake_dispatcher
        )
    except quotas.QuotaExceeded as refusal:
        # 413 over the storage quota, 429 once the day's pages are used up: nothing was stored.
        return api_error(refusal.status, str(refusal))
    except (UploadRejected, CallbackUrlRejected, idempotency.IdempotencyKeyInvalid) as rejection:
        return api_error(400, str(rejection))
    except idempotency.IdempotencyConflict as conflict:
        return api_error(422, str(conflict))
    except idempotency.IdempotencyInProgress as busy:
        return api_error(409, str(busy))
    return jsonify(answer.body), answer.status, {"Idempotent-Replayed": "true"} if answer.replayed else {}


@bp.get("/me")
@token_required
def me():
    """The caller's account: email, role, and their quotas with what they use of them."""
    return jsonify(email=g.user.email, role=g.user.role, **quotas.usage(db.session, g.user).as_dict())


@bp.get("/documents")
@token_required
def documents_index():
    """The caller's documents, newest first, a keyset page at a time (the documents page's own listing).

    `?limit=` (1–1000), `?after=<id>` (the last document already seen),
    `?status=` and `?q=` (part of the file name) as on the page; `next` is
    the URL of the following page, null on the last.
    """
    window = ListWindow.from_request()
    try:
        listing = ListingRequest.parse(
            {"q": request.args.get("q"), "status": request.args.get("status"), "before": str(window.after or "")}
        )
    except BadListingRequest as error:
        return api_error(400, str(error))
    page = documents_page(db.session, g.user.id, listing, size=window.limit)
    next_url = None
    if page.older:
        # Built from named parameters only: a client's other arguments never reach url_for.
        next_url = url_for("api.documents_index", limit=window.limit, after=page.documents[-1].id, **listing.filters())
    return jsonify(documents=[document_as_dict(d) for d in page.documents], next=next_url)


def owned_document(document_id: int):
    """The caller's document; 404 for a missing one and for another user's alike."""
    document = get_document(db.session, g.user.id, document_id)
    if document is None:
        abort(404, description=f"no document {document_id}")
    return document


@bp.errorhandler(NotFound)
def not_found(error):
    return api_error(404, error.description)


def results_of(document_id: int) -> dict:
    """Which run's outputs the result endpoints show, and whether it completed (else they are partial)."""
    run = run_outputs.results_run(db.session, document_id)
    return {"run": run.job_id, "complete": run.complete}


@bp.get("/documents/<id:document_id>")
@token_required
def document_detail(document_id: int):
    """The document, its newest run's stage records (the timeline: `not_run` for those a failure left),
    the optional stages it completed without (`warnings`), its attempt history and which run its results come
    from."""
    document = owned_document(document_id)
    state = document_state(
        document.status,
        stage_record_reads.latest_run_records(db.session, document.id),
        page_notes(db.session, document.id),
    )
    return jsonify(
        {
            **document_as_dict(document),
            "stages": [record.as_dict() for record in state.stages],
            "warnings": state.warnings,
            "attempts": attempt_history(db.session, document.id),
            "results": results_of(document.id),
        }
    )


@bp.get("/documents/<id:document_id>/pages")
@token_required
def document_pages(document_id: int):
    """The text page by page, `ocr` true where OCR read it; `?limit=` and `?after=` (a page number) page it."""
    document = owned_document(document_id)
    window = ListWindow.from_request()
    rows = result_pages(db.session, document.id, after=window.after, limit=window.fetch_limit)
    pages, next_url = window.split(rows, key=lambda page: page.page_number)
    return jsonify(
        document_id=document.id,
        **results_of(document.id),
        pages=[{"page": page.page_number, "text": page.text, "ocr": page.ocr, "note": page.note} for page in pages],
        next=next_url,
    )


@bp.post("/documents/<id:document_id>/reprocess")
@token_required
def reprocess_document(document_id: int):
    """Run the document through the pipeline again; 409 while a run is still live."""
    document = owned_document(document_id)
    try:
        commands.reprocess(db.session, document.id)
    except AlreadyQueued as conflict:
        return api_error(409, str(conflict))
    return jsonify(id=document.id, status="pending"), 202


@bp.post("/documents/<id:document_id>/retry")
@token_required
def retry_failed_document(document_id: int):
    """Retry a failed document from the stage that failed, keeping what its run wrote; 409 unless it failed."""
    document = owned_document(document_id)
    try:
        stage = commands.retry_failed(db.session, document.id)
    except NothingToRetry as conflict:
        return api_error(409, str(conflict))
    return jsonify(id=document.id, status="pending", stage=stage), 202


@bp.post("/documents/<id:document_id>/stages/<stage>/retry")
@token_required
def retry_document_stage(document_id: int, stage: str):
    """Run one failed optional stage of a completed document again, alone; 404 for no such stage, 409 for one
    that is not optional or did not fail."""
    document = owned_document(document_id)
    try:
        commands.retry_stage(db.session, document.id, stage)
    except KeyError:
        return api_error(404, f"no stage {stage[:100]!r}")
    except NothingToRetry as conflict:
        return api_error(409, str(conflict))
    return jsonify(id=document.id, status="pending", stage=stage), 202


@bp.post("/documents/<id:document_id>/ocr")
@token_required
def ocr_document(document_id: int):
    """Run the document again with OCR, for owners with background OCR off; `409` while a run is live."""
    document = owned_document(document_id)
    try:
        commands.start_ocr(db.session, document.id)
    except AlreadyQueued as conflict:
        return api_error(409, str(conflict))
    return jsonify(id=document.id, status="pending"), 202


@bp.get("/documents/<id:document_id>/searchable.pdf")
@token_required
def searchable_pdf(document_id: int):
    """The original with an invisible text layer on its OCR'd pages, from the run a reader sees; 404 if none."""
    document = owned_document(document_id)
    return send_searchable_pdf(document) or api_error(404, f"document {document.id} has no searchable PDF")


@bp.get("/queue/stats")
@token_required
def queue_stats():
    """Queue counts and waits (the whole queue's for operators and admins, a viewer's own for a viewer), and
    each outside service's circuit breaker (`breakers`)."""
    owner_id = None if g.user.has_role("operator") else g.user.id
    breakers = {name: state.as_dict() for name, state in breaker_states().items()}
    timings = current_app.extensions["stage_timings"].get(db.session)
    lanes = {
        lane: backlog.as_dict() for lane, backlog in lane_backlog(db.session, timings, STAGE_NAMES, owner_id).items()
    }
    return jsonify(
        {**read_dashboard(db.session, STAGE_NAMES, owner_id).as_stats(), "breakers": breakers, "lanes": lanes}
    )


@bp.post("/queue/requeue-failed")
@api_role_required("operator")
def requeue_failed():
    """Documents whose last run failed for a reason that can pass go back to pending; the rest are listed."""
    result = commands.requeue_failed(db.session, actor=g.user)
    skipped = [{"reason": reason, "documents": count} for reason, count in result.skipped]
    return jsonify(requeued=result.requeued, skipped=skipped)


@bp.post("/queue/process")
@api_role_required("operator")
def process_queue():
    """The cron endpoint: run the dispatcher once and report what it did."""
    return jsonify(process_document_queue(db.session).as_dict())
