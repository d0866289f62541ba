"""The document page: one document's stage timeline, its text page by page, its searchable PDF.

The text is shown a few pages at a time (`?after=` the last page seen,
links to the next ones), never all of it: a document of 100 pages of 1 MB
of text each made a 95 MB page. While the document can still change, only
a small status partial (summary and stages, `/documents/<id>/status`)
polls; once the document has finished the poll's answer asks htmx to
reload the page (`HX-Refresh`), which then shows the results and no
longer polls.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, make_response, redirect, render_template, url_for
from flask_login import current_user, login_required

from docqueue import commands
from docqueue.document_state import document_state
from docqueue.documents import get_document
from docqueue.jobs import AlreadyQueued
from docqueue.models import MAX_ID
from docqueue.queue import run_outputs, stage_record_reads
from docqueue.queue.owner_retries import NothingToRetry
from docqueue.results.chunks import list_chunks
from docqueue.results.enrichment import list_answers
from docqueue.results.images import list_images
from docqueue.results.pages import page_notes, result_pages
from web.downloads import send_searchable_pdf
from web.extensions import db
from web.htmx import is_htmx, redirect_whole_page_for_htmx
from web.params import query_int

bp = Blueprint("document_pages", __name__)
# A poll whose session ended must send the whole page to the login form, as on the documents list.
bp.after_request(redirect_whole_page_for_htmx)

#: Most pages of text shown at once; links page through the rest.
TEXT_PAGES_SHOWN = 10
#: Most characters of text shown at once (a page may hold MAX_PAGE_TEXT_CHARS): at least one page is shown.
TEXT_CHARS_SHOWN = 200_000
#: Images, chunks and enrichment answers shown on the page; the API pages through the rest.
ITEMS_SHOWN = 50
#: Document statuses that can still change: the detail polls while the document has one.
UNFINISHED_STATUSES = ("pending", "processing")


def _owned(document_id: int):
    document = get_document(db.session, current_user.id, document_id)
    if document is None:
        abort(404)
    return document


def text_window(pages: list, most_pages: int, most_chars: int) -> tuple[list, int | None]:
    """The pages to show from `pages` (in order): at most `most_pages` and `most_chars` of text, at least one;
    and the page number to show the next ones after (None when `pages` holds no more)."""
    shown, chars = [], 0
    for page in pages[:most_pages]:
        chars += len(page.text or "")
        if shown and chars > most_chars:
            break
        shown.append(page)
    return shown, (shown[-1].page_number if len(shown) < len(pages) else None)


def _status_context(document) -> dict:
    """What the status partial shows: the summary and the stages, and whether it polls."""
    run = run_outputs.results_run(db.session, document.id)
    state = document_state(
        document.status,
        stage_record_reads.latest_run_records(db.session, document.id),
        page_notes(db.session, document.id),
    )
    return {
        "document": document,
        "state": state,
        "stages": state.stages,
        "run": run,
        "searchable": run.complete and stage_record_reads.stage_completed(db.session, run.job_id, "searchable_pdf"),
        "polling": document.status in UNFINISHED_STATUSES,
    }


@bp.get("/documents/<id:document_id>")
@login_required
def document_page(document_id: int):
    """The document's detail with a window of its text: `?after=N` shows the pages after page N."""
    document = _owned(document_id)
    after = query_int("after", 0, 0, MAX_ID)
    context = _status_context(document)
    run = context["run"]
    rows = result_pages(db.session, document.id, after=after, limit=TEXT_PAGES_SHOWN + 1)
    pages, next_after = text_window(rows, TEXT_PAGES_SHOWN, TEXT_CHARS_SHOWN)
    context |= {
        "pages": pages,
        "after": after,
        "next_after": next_after,
        "images": list_images(db.session, run.job_id, limit=ITEMS_SHOWN),
        "chunks": list_chunks(db.session, run.job_id, limit=ITEMS_SHOWN),
        "answers": list_answers(db.session, run.job_id, limit=ITEMS_SHOWN),
        "items_shown": ITEMS_SHOWN,
    }
    return render_template("document_pages/document.html", **context)


@bp.get("/documents/<id:document_id>/status")
@login_required
def document_status(document_id: int):
    """The summary and stages alone, for the page's poll; a finished document's answer reloads the page."""
    context = _status_context(_owned(document_id))
    response = make_response(render_template("document_pages/_document_status.html", **context))
    if not context["polling"] and is_htmx():
        # Finished while the page polled: the whole page (text, images, downloads) is now worth showing.
        response.headers["HX-Refresh"] = "true"
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
