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

from docqueue.documents import UploadRejected, validate_priority
from docqueue.ingest import IngestOptions, ingest_paths
from docqueue.text_cleaning import shown_name
from docqueue.wording import counted
from web.extensions import db
from web.pages import upload_too_large

bp = Blueprint("folder_upload", __name__)


#: Most bytes of UTF-8 one file name may take on disk (ext4, tmpfs and the like).
MAX_NAME_BYTES = 255
#: Most bytes of a folder-relative path: PATH_MAX (4096) less room for the temporary directory it goes under.
MAX_PATH_BYTES = 3840
#: An extension longer than this is cut with the rest of the name rather than kept.
MAX_KEPT_SUFFIX_BYTES = 16


def _fit_name(part: str) -> str:
    """`part` cut to MAX_NAME_BYTES of UTF-8, its extension kept, no character split (`é` is two bytes)."""
    if len(part.encode()) <= MAX_NAME_BYTES:
        return part
    suffix = os.path.splitext(part)[1]
    if len(suffix.encode()) > MAX_KEPT_SUFFIX_BYTES:
        suffix = ""
    stem = part[: len(part) - len(suffix)]
    return stem.encode()[: MAX_NAME_BYTES - len(suffix.encode())].decode(errors="ignore") + suffix


def _safe_parts(filename: str) -> list[str]:
    """The folder-relative path the browser sent, as parts that stay inside the target directory.

    UploadRejected for a NUL byte, as every upload form refuses it.
    """
    if "\x00" in filename:
        raise UploadRejected("the file name contains a NUL byte")
    parts = filename.replace("\\", "/").split("/")
    return [_fit_name(part) for part in parts if part not in ("", ".", "..")]


def _check_names(files) -> None:
    """UploadRejected naming the first file whose path cannot be written: checked before anything is."""
    for upload in files:
        try:
            length = len("/".join(_safe_parts(upload.filename)).encode())
            if length > MAX_PATH_BYTES:
                raise UploadRejected(f"the path is {length} bytes long, over the {MAX_PATH_BYTES} a folder path may be")
        except UploadRejected as rejection:
            shown = shown_name(upload.filename)[:100]
            raise UploadRejected(f"{shown}: {rejection}; nothing was stored") from None


def _planned_paths(files) -> list[tuple[object, list[str]]]:
    """Each upload with the parts of the path it will be written to, no two the same and none a folder of another.

    The browser's paths may clash once cleaned (`a/./b.pdf` and `a/b.pdf`), or
    one file's path may be another's folder (`x/a.pdf` beside `x/a.pdf/b.pdf`):
    such a file keeps its folder and gets its upload's number in front of its
    name, so every file is kept and none is written over or in the way.
    """
    planned = [(number, upload, _safe_parts(upload.filename)) for number, upload in enumerate(files)]
    folders = {tuple(parts[:end]) for _, _, parts in planned for end in range(1, len(parts))}
    taken: set[tuple[str, ...]] = set()
    paths = []
    for number, upload, parts in planned:
        if not parts:
            continue
        name, attempt = parts[-1], 0
        while tuple(parts) in taken or tuple(parts) in folders:
            # A new prefix each time: cutting a long name to fit must not give back a name already tried.
            prefix = f"{number}-" if attempt == 0 else f"{number}-{attempt}-"
            parts, attempt = [*parts[:-1], _fit_name(prefix + name)], attempt + 1
        taken.add(tuple(parts))
        paths.append((upload, parts))
    return paths


def _save_tree(files, target: Path) -> list[str]:
    """Write the uploaded files under `target` by their relative paths; return the top-level names."""
    tops: list[str] = []
    for upload, parts in _planned_paths(files):
        destination = target.joinpath(*parts)
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
    try:
        _check_names(files)
    except UploadRejected as rejection:
        flash(str(rejection), "error")
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
