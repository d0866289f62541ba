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


def make_slow_pdf(text_operations: int) -> bytes:
    """A one-page PDF whose content stream has `text_operations` text draws: slow to extract, small to store.

    Extracting 600,000 of them took about 1 s on the 2-core dev machine.
    """
    document = pymupdf.open()
    page = document.new_page()
    page.insert_text((72, 72), "x")
    font = page.get_fonts()[0][4]
    stream = b"BT /" + font.encode() + b" 11 Tf 72 720 Td " + b"(slow ) Tj 0.01 0 Td " * text_operations + b"ET"
    document.update_stream(page.get_contents()[0], stream)
    return document.tobytes(deflate=True)
