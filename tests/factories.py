"""Building test inputs: documents in the database, PDFs made on the spot."""

from __future__ import annotations

import io

import pymupdf

from docqueue.documents import create_document


def make_pdf(pages: list[str]) -> bytes:
    """A PDF whose page i carries the text pages[i] (an empty string makes a textless page)."""
    document = pymupdf.open()
    for page_text in pages:
        page = document.new_page()
        if page_text:
            page.insert_text((72, 72), page_text)
    return document.tobytes()


def add_document(session, owner_id: int, data: bytes = b"", *, filename: str = "doc.pdf", priority=None) -> int:
    """Store `data` as an uploaded document (queued as pending); return its id."""
    document = create_document(
        session, owner_id, filename, "application/pdf", io.BytesIO(data or make_pdf(["hello"])), priority
    )
    session.commit()
    return document.id
