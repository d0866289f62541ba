"""The document page: one document's stage timeline, its text page by page, its searchable PDF.

A full page, or the detail partial alone when htmx polls (`HX-Request`);
the partial polls only while the document can still change.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, make_response, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from docqueue import commands
from docqueue.document_state import document_state
from docqueue.documents import get_document, page_notes, result_pages
from docqueue.queue import AlreadyQueued, run_outputs, stage_records
from docqueue.queue.owner_retries import NothingToRetry
from docqueue.results.chunks import list_chunks
from docqueue.results.enrichment import list_answers
from docqueue.results.images import list_images
from web.downloads import send_searchable_pdf
from web.extensions import db
from web.pages import redirect_whole_page_for_htmx

bp = Blueprint("document_pages", __name__)
# A poll whose session ended must send the whole page to the login form, as on the documents list.
bp.after_request(redirect_whole_page_for_htmx)

#: Pages of text shown on the page; the API pages through the rest.
PAGES_SHOWN = 100
#: Images, chunks and enrichment answers shown on the page; the API pages through the rest.
ITEMS_SHOWN = 50
#: Document statuses that can still change: the detail polls while the document has one.
UNFINISHED_STATUSES = ("pending", "processing")


def _owned(document_id: int):
    document = get_document(db.session, current_user.id, document_id)
    if document is None:
        abort(404)
    return document


@bp.get("/documents/<id:document_id>")
@login_required
def document_page(document_id: int):
    """The document's detail; an htmx poll gets only the detail partial."""
    document = _owned(document_id)
    run = run_outputs.results_run(db.session, document.id)
    state = document_state(
        document.status,
        stage_records.latest_run_records(db.session, document.id),
        page_notes(db.session, document.id),
    )
    context = {
        "document": document,
        "state": state,
        "stages": state.stages,
        "run": run,
        "pages": result_pages(db.session, document.id, limit=PAGES_SHOWN),
        "pages_shown": PAGES_SHOWN,
        "searchable": run.complete and stage_records.stage_completed(db.session, run.job_id, "searchable_pdf"),
        "polling": document.status in UNFINISHED_STATUSES,
        "images": list_images(db.session, run.job_id, limit=ITEMS_SHOWN),
        "chunks": list_chunks(db.session, run.job_id, limit=ITEMS_SHOWN),
        "answers": list_answers(db.session, run.job_id, limit=ITEMS_SHOWN),
        "items_shown": ITEMS_SHOWN,
    }
    template = "_document_detail.html" if request.headers.get("HX-Request") else "document.html"
    response = make_response(render_template(template, **context))
    response.vary.add("HX-Request")
    return response


@bp.get("/documents/<id:document_id>/searchable.pdf")
@login_required
def searchable_pdf(document_id: int):
    """Download the searchable PDF from the browser (the session's user, like the page)."""
    return send_searchable_pdf(_owned(document_id)) or abort(404)


@bp.post("/documents/<id:document_id>/ocr")
@login_required
def start_ocr(document_id: int):
    """Run the document again with OCR on (for owners with background OCR off), then show it."""
    document = _owned(document_id)
    try:
        commands.start_ocr(db.session, document.id)
    except AlreadyQueued:
        flash("This document is still being processed: start OCR once it has finished.", "error")
    else:
        flash("OCR queued", "info")
    return _back_to(document.id)


def _back_to(document_id: int):
    return redirect(url_for("document_pages.document_page", document_id=document_id))


@bp.post("/documents/<id:document_id>/reprocess")
@login_required
def reprocess(document_id: int):
    """Run the document through the whole pipeline again; its results stay until the new run completes."""
    document = _owned(document_id)
    try:
        commands.reprocess(db.session, document.id)
    except AlreadyQueued:
        flash("This document is still being processed: reprocess it once it has finished.", "error")
    else:
        flash("Reprocessing queued: the results shown stay until the new run completes.", "info")
    return _back_to(document.id)


@bp.post("/documents/<id:document_id>/retry")
@login_required
def retry_failed(document_id: int):
    """Retry the failed document from the stage that failed, keeping what its run wrote."""
    document = _owned(document_id)
    try:
        stage = commands.retry_failed(db.session, document.id)
    except NothingToRetry as refusal:
        flash(f"Nothing to retry: {refusal}.", "error")
    else:
        flash(f"Retrying from stage {stage.replace('_', ' ')}.", "info")
    return _back_to(document.id)


@bp.post("/documents/<id:document_id>/stages/<stage>/retry")
@login_required
def retry_stage(document_id: int, stage: str):
    """Run one failed optional stage of the completed document again, alone."""
    document = _owned(document_id)
    try:
        commands.retry_stage(db.session, document.id, stage)
    except KeyError:
        abort(404)
    except NothingToRetry as refusal:
        flash(f"Nothing to retry: {refusal}.", "error")
    else:
        flash(f"Retrying stage {stage.replace('_', ' ')}; everything else is kept.", "info")
    return _back_to(document.id)
