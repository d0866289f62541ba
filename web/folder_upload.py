"""Uploading a whole folder in the browser: the same ingest as `docqueue ingest`, from a temporary copy.

The browser sends each file with its path inside the chosen folder. They
are written under a temporary directory with those paths (nothing that
could climb out of it) and ingested from there with `ingest_paths`: the
same dedupe, batches, bulk lane and run record as the CLI.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from flask import Blueprint, flash, redirect, request, url_for
from flask_login import current_user, login_required
from werkzeug.exceptions import RequestEntityTooLarge

from docqueue.documents import MAX_FILENAME_CHARS, UploadRejected, validate_priority
from docqueue.ingest import IngestOptions, ingest_paths
from docqueue.wording import counted
from web.extensions import db
from web.pages import upload_too_large

bp = Blueprint("folder_upload", __name__)


def _safe_parts(filename: str) -> list[str]:
    """The folder-relative path the browser sent, as parts that stay inside the target directory."""
    parts = filename.replace("\x00", "").replace("\\", "/").split("/")
    return [part[:MAX_FILENAME_CHARS] for part in parts if part not in ("", ".", "..")]


def _save_tree(files, target: Path) -> list[str]:
    """Write the uploaded files under `target` by their relative paths; return the top-level names."""
    tops: list[str] = []
    for number, upload in enumerate(files):
        parts = _safe_parts(upload.filename or "")
        if not parts:
            continue
        destination = target.joinpath(*parts)
        if destination.exists():  # two parts that sanitised to the same path: keep both
            destination = destination.with_name(f"{number}-{destination.name}")
        destination.parent.mkdir(parents=True, exist_ok=True)
        upload.save(destination)
        if parts[0] not in tops:
            tops.append(parts[0])
    return tops


# A folder over MAX_UPLOAD_MB in all is told on the page, as a too-large upload is.
bp.register_error_handler(RequestEntityTooLarge, upload_too_large)


@bp.post("/upload/folder")
@login_required
def upload_folder():
    """Ingest every file of the chosen folder for the user, then show the list again with a summary."""
    try:
        priority = validate_priority(request.form.get("priority"))
    except UploadRejected as rejection:
        flash(str(rejection), "error")
        return redirect(url_for("pages.index"))
    files = [upload for upload in request.files.getlist("folder") if upload.filename]
    if not files:
        flash("Choose a folder to upload.", "error")
        return redirect(url_for("pages.index"))
    with tempfile.TemporaryDirectory(prefix="docqueue-folder-") as directory:
        tops = _save_tree(files, Path(directory))
        report = ingest_paths(
            db.session,
            current_user.id,
            [os.path.join(directory, top) for top in tops],
            IngestOptions.from_settings(priority=priority, source="browser"),
            display_paths=tops,
        )
    p = report.progress
    flash(
        f"Folder imported: {counted(p.added, 'file')} queued, {p.duplicates} already there, {p.rejected} rejected.",
        "info",
    )
    for rejection in report.rejections[:20]:
        flash(f"{rejection.display}: {rejection.reason}", "error")
    return redirect(url_for("pages.index"))
