"""Browser pages: the upload form and the user's documents with live status."""

from __future__ import annotations

from datetime import datetime, timezone

from flask import Blueprint, current_app, flash, redirect, request, url_for
from flask_login import current_user, login_required
from werkzeug.exceptions import RequestEntityTooLarge

from docqueue import commands, quotas
from docqueue.document_listing import DOCUMENT_STATUSES, BadListingRequest, ListingRequest, documents_page
from docqueue.documents import UploadRejected, upload_too_large_message, validate_priority
from docqueue.upload_each import submit_each
from docqueue.wording import counted
from web.dispatch_waker import wake_dispatcher
from web.extensions import db
from web.htmx import is_htmx, page_or_partial, redirect_whole_page_for_htmx

bp = Blueprint("pages", __name__)

#: Document statuses that can still change; the list polls while any row has one.
UNFINISHED_STATUSES = ("pending", "processing")


@bp.app_template_filter("utc_time")
def utc_time(value: datetime) -> str:
    """A timestamp as `2025-01-31 14:05:09 UTC`, whatever time zone the database answered in."""
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


bp.after_request(redirect_whole_page_for_htmx)


@bp.errorhandler(RequestEntityTooLarge)
def upload_too_large(error):
    """Say so on the page instead of Werkzeug's bare 413: nothing of the upload was stored."""
    flash(upload_too_large_message(current_app.config["MAX_CONTENT_LENGTH"]), "error")
    return redirect(url_for("pages.index"))


@bp.get("/")
@login_required
def index():
    """The upload form and a page of the user's documents; an htmx poll gets only the list.

    The search (`q`), `status` filter and page position (`before`/`after` a document id) are all in the URL.
    """
    try:
        listing = ListingRequest.parse(request.args)
    except BadListingRequest as error:
        flash(f"{error}; showing your newest documents instead.", "error")
        return redirect(url_for("pages.index"))
    page = documents_page(db.session, current_user.id, listing)
    polling = any(document.status in UNFINISHED_STATUSES for document in page.documents)
    usage = None if is_htmx() else quotas.usage(db.session, current_user)
    return page_or_partial(
        "pages/index.html",
        "pages/_document_list.html",
        page=page,
        listing=listing,
        statuses=DOCUMENT_STATUSES,
        polling=polling,
        usage=usage,
    )


@bp.post("/upload")
@login_required
def upload():
    """Queue each file chosen in the upload form on its own, then show the list again (POST-redirect-GET)."""
    try:
        priority = validate_priority(request.form.get("priority"))
    except UploadRejected as rejection:
        flash(str(rejection), "error")
        return redirect(url_for("pages.index"))
    # A form submitted with no file selected still sends one part, with an empty file name.
    files = [file for file in request.files.getlist("files") if file.filename]
    if not files:
        flash("Choose at least one file to upload.", "error")
        return redirect(url_for("pages.index"))
    uploads = [commands.Upload(file.filename, file.mimetype, file.stream) for file in files]
    # Each file is its own upload here: a refused one costs only itself (the API's request stays all or nothing).
    result = submit_each(db.session, current_user.id, uploads, priority, wake=wake_dispatcher)
    if result.stored:
        flash(f"Queued {counted(len(result.stored), 'file')}", "info")
    if result.refused:
        flash(f"{counted(len(result.refused), 'file')} not stored:", "error")
    # Each refused file stays listed with its reason (the message survives the redirect); the others are queued.
    for refusal in result.refused:
        flash(f"{refusal.filename}: {refusal.reason}", "refused")
    return redirect(url_for("pages.index"))
