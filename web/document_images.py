"""An image of a document for the browser (the document page's thumbnails), for the session's user."""

from __future__ import annotations

import io

from flask import Blueprint, abort, send_file
from flask_login import current_user, login_required

from docqueue.documents import get_document
from docqueue.queue import run_outputs
from docqueue.results.images import get_image, image_bytes
from web.extensions import db

bp = Blueprint("document_images", __name__)


@bp.get("/documents/<id:document_id>/images/<id:image_id>")
@login_required
def image(document_id: int, image_id: int):
    """The stored image's bytes; 404 for another user's document or a skipped image alike."""
    document = get_document(db.session, current_user.id, document_id)
    if document is None:
        abort(404)
    found = get_image(db.session, run_outputs.results_run(db.session, document.id).job_id, image_id)
    if found is None or found.skipped_reason is not None:
        abort(404)
    response = send_file(io.BytesIO(image_bytes(db.session, found)), mimetype=f"image/{found.format}")
    # The bytes of an image id never change: a run's images are replaced by new rows, not rewritten.
    response.cache_control.max_age = 3600
    response.cache_control.private = True
    return response
