"""The API for the later stages' results: chunks, images (and their bytes), enrichment answers, callbacks.

List endpoints answer `{<items>: [...], "next": URL or null}` and take
`?limit=` (1 to 1000, default 100); `next` carries the cursor (`after`).
"""

from __future__ import annotations

import io

from flask import Blueprint, jsonify, request, send_file, url_for

from docqueue.callbacks.deliveries import deliveries_for
from docqueue.results.chunks import list_chunks
from docqueue.results.enrichment import list_answers
from docqueue.results.images import get_image, image_key, list_images
from docqueue.storage import blob_store
from web.api import owned_document
from web.auth import api_error, token_required
from web.extensions import db

bp = Blueprint("results_api", __name__, url_prefix="/api")

MAX_LIMIT = 1000
DEFAULT_LIMIT = 100


class BadQuery(ValueError):
    """A query parameter is out of range; the message says which and why."""


def _int_arg(name: str, default: int, low: int, high: int | None = None) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadQuery(f"{name} must be a whole number, got {raw!r}") from None
    if value < low or (high is not None and value > high):
        bound = f"from {low} to {high}" if high is not None else f"at least {low}"
        raise BadQuery(f"{name} must be {bound}, got {value}")
    return value


def _page_args(first_after: int) -> tuple[int, int]:
    return _int_arg("after", first_after, first_after), _int_arg("limit", DEFAULT_LIMIT, 1, MAX_LIMIT)


def _listing(key: str, items: list[dict], limit: int, last_cursor: int | None, endpoint: str, **values):
    """The list object: the items and the URL of the next page (None on the last)."""
    more = len(items) > limit
    items = items[:limit]
    next_url = url_for(endpoint, after=last_cursor, limit=limit, _external=True, **values) if more else None
    return jsonify({key: items, "next": next_url, **values})


@bp.errorhandler(BadQuery)
def bad_query(error):
    return api_error(400, str(error))


@bp.get("/documents/<int:document_id>/chunks")
@token_required
def document_chunks(document_id: int):
    """The document's chunks in order: text and the pages each spans."""
    document = owned_document(document_id)
    after, limit = _page_args(-1)
    rows = list_chunks(db.session, document.id, after, limit + 1)
    items = [
        {
            "seq": c.seq,
            "text": c.text,
            "page_start": c.page_start,
            "page_end": c.page_end,
            "pages": list(range(c.page_start, c.page_end + 1)),
            "embedding_model": c.embedding_model,
        }
        for c in rows
    ]
    last = rows[min(limit, len(rows)) - 1].seq if rows else None
    return _listing("chunks", items, limit, last, "results_api.document_chunks", document_id=document.id)


def image_as_dict(image) -> dict:
    """An image's JSON: page, size, format, hash and the URL of its bytes (null when it was skipped)."""
    stored = image.skipped_reason is None
    return {
        "id": image.id,
        "page": image.page_number,
        "width": image.width,
        "height": image.height,
        "format": image.format,
        "size": image.size_bytes,
        "sha256": image.sha256,
        "url": url_for("results_api.image_bytes", document_id=image.document_id, image_id=image.id, _external=True)
        if stored
        else None,
        "skipped": image.skipped_reason,
        "embedding_model": image.embedding_model,
    }


@bp.get("/documents/<int:document_id>/images")
@token_required
def document_images(document_id: int):
    """The document's images: one per image object, with a URL for the bytes."""
    document = owned_document(document_id)
    after, limit = _page_args(0)
    rows = list_images(db.session, document.id, after, limit + 1)
    last = rows[min(limit, len(rows)) - 1].id if rows else None
    items = [image_as_dict(image) for image in rows]
    return _listing("images", items, limit, last, "results_api.document_images", document_id=document.id)


@bp.get("/documents/<int:document_id>/images/<int:image_id>")
@token_required
def image_bytes(document_id: int, image_id: int):
    """The image's bytes as extracted, with its content type."""
    document = owned_document(document_id)
    image = get_image(db.session, document.id, image_id)
    if image is None or image.skipped_reason is not None:
        return api_error(404, f"document {document.id} has no stored image {image_id}")
    data = io.BytesIO()
    blob_store(db.session).download_to(image_key(document.id, image.sha256), data)
    data.seek(0)
    return send_file(data, mimetype=f"image/{image.format}", download_name=f"image-{image.id}.{image.format}")


@bp.get("/documents/<int:document_id>/enrichment")
@token_required
def document_enrichment(document_id: int):
    """The chat provider's answers about the document's text and images."""
    document = owned_document(document_id)
    after, limit = _page_args(0)
    rows = list_answers(db.session, document.id, after, limit + 1)
    items = [
        {
            "id": a.id,
            "kind": a.kind,
            "image_id": a.image_id,
            "model": a.model,
            "answer": a.answer,
            "created_at": a.created_at.isoformat(),
        }
        for a in rows
    ]
    last = rows[min(limit, len(rows)) - 1].id if rows else None
    return _listing("enrichment", items, limit, last, "results_api.document_enrichment", document_id=document.id)


@bp.get("/documents/<int:document_id>/callbacks")
@token_required
def document_callbacks(document_id: int):
    """Each callback POST this document has had or will have: URL, status, attempts, last error."""
    document = owned_document(document_id)
    return jsonify(document_id=document.id, callbacks=[d.as_dict() for d in deliveries_for(db.session, document.id)])
