"""The API for the later stages' results: chunks, images (and their bytes), enrichment answers, callbacks.

List endpoints answer `{<items>: [...], "next": URL or null}` with the run
they come from (`run`, `complete`), and take `?limit=` (up to 1000) and
`?after=` (web/pagination.py).
"""

from __future__ import annotations

import io

from flask import Blueprint, jsonify, send_file, url_for

from docqueue.callbacks.deliveries import deliveries_for
from docqueue.models import DocumentImage
from docqueue.queue import run_outputs
from docqueue.results.chunks import list_chunks
from docqueue.results.enrichment import list_answers
from docqueue.results.images import get_image, image_bytes, list_images
from web.api import owned_document, results_of
from web.auth import api_error, token_required
from web.extensions import db
from web.pagination import ListWindow

bp = Blueprint("results_api", __name__, url_prefix="/api")


def _results_run(document_id: int) -> int | None:
    return run_outputs.results_run(db.session, document_id).job_id


@bp.get("/documents/<id:document_id>/chunks")
@token_required
def document_chunks(document_id: int):
    """The document's chunks in order (`seq` from 1): text and the pages each spans."""
    document = owned_document(document_id)
    window = ListWindow.from_request()
    rows = list_chunks(db.session, _results_run(document.id), window.after, window.fetch_limit)
    chunks, next_url = window.split(rows, key=lambda chunk: chunk.seq)
    items = [
        {
            "seq": chunk.seq,
            "text": chunk.text,
            "pages": list(range(chunk.page_start, chunk.page_end + 1)),
            "embedding_model": chunk.embedding_model,
        }
        for chunk in chunks
    ]
    return jsonify(document_id=document.id, **results_of(document.id), chunks=items, next=next_url)


def image_as_dict(image: DocumentImage, bytes_url: str | None) -> dict:
    """An image's JSON: page, size, format, hash, and the URL of its bytes (null when it was skipped)."""
    return {
        "id": image.id,
        "page": image.page_number,
        "width": image.width,
        "height": image.height,
        "format": image.format,
        "size": image.size_bytes,
        "sha256": image.sha256,
        "url": bytes_url if image.skipped_reason is None else None,
        "skipped": image.skipped_reason,
        "embedding_model": image.embedding_model,
    }


@bp.get("/documents/<id:document_id>/images")
@token_required
def document_images(document_id: int):
    """The document's images, one per image object, each with the URL of its bytes."""
    document = owned_document(document_id)
    window = ListWindow.from_request()
    rows = list_images(db.session, _results_run(document.id), window.after, window.fetch_limit)
    images, next_url = window.split(rows, key=lambda image: image.id)
    items = [
        image_as_dict(image, url_for(".image_content", document_id=document.id, image_id=image.id, _external=True))
        for image in images
    ]
    return jsonify(document_id=document.id, **results_of(document.id), images=items, next=next_url)


@bp.get("/documents/<id:document_id>/images/<id:image_id>")
@token_required
def image_content(document_id: int, image_id: int):
    """The image's bytes as extracted, with its content type."""
    document = owned_document(document_id)
    image = get_image(db.session, _results_run(document.id), image_id)
    if image is None or image.skipped_reason is not None:
        return api_error(404, f"document {document.id} has no stored image {image_id}")
    data = io.BytesIO(image_bytes(db.session, image))
    return send_file(data, mimetype=f"image/{image.format}", download_name=f"image-{image.id}.{image.format}")


@bp.get("/documents/<id:document_id>/enrichment")
@token_required
def document_enrichment(document_id: int):
    """The chat provider's answers about the document's text (`product_discovery`) and images (`vision_description`)."""
    document = owned_document(document_id)
    window = ListWindow.from_request()
    rows = list_answers(db.session, _results_run(document.id), window.after, window.fetch_limit)
    answers, next_url = window.split(rows, key=lambda answer: answer.id)
    items = [
        {
            "id": answer.id,
            "kind": answer.kind,
            "image_id": answer.image_id,
            "model": answer.model,
            "answer": answer.answer,
            "created_at": answer.created_at.isoformat(),
        }
        for answer in answers
    ]
    return jsonify(document_id=document.id, **results_of(document.id), enrichment=items, next=next_url)


@bp.get("/documents/<id:document_id>/callbacks")
@token_required
def document_callbacks(document_id: int):
    """Each callback POST of the document's runs: URL, status, attempts, last answer or error."""
    document = owned_document(document_id)
    return jsonify(document_id=document.id, callbacks=[d.as_dict() for d in deliveries_for(db.session, document.id)])
