"""The JSON shape of a document in the API: what `docqueue.models.Document` looks like to a client."""

from __future__ import annotations

from docqueue.models import Document


def document_as_dict(document: Document) -> dict:
    """The JSON shape of a document in the API."""

    def iso(value):
        return value.isoformat() if value else None

    return {
        "id": document.id,
        "filename": document.filename,
        "content_type": document.content_type,
        "detected_type": document.detected_type,
        "size": document.size_bytes,
        "sha256": document.sha256,
        "status": document.status,
        "stage": document.current_stage,
        "progress": document.progress,
        "page_count": document.page_count,
        # Pages whose text was cut at MAX_PAGE_TEXT_CHARS (a page drawing millions of characters).
        "text_truncated_pages": document.text_truncated_pages,
        # The per-document budgets (MAX_DOCUMENT_TEXT_CHARS, ...) the newest run reached: what each cut.
        "budget_cuts": document.budget_cuts or {},
        "error": document.error,
        "ocr_status": document.ocr_status,
        "ocr_error": document.ocr_error,
        "ocr_completed_at": iso(document.ocr_completed_at),
        "created_at": iso(document.created_at),
        "updated_at": iso(document.updated_at),
        "completed_at": iso(document.completed_at),
    }
