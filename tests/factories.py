"""Building test inputs: documents in the database, PDFs made on the spot."""

from __future__ import annotations

import io
import struct

import pymupdf

from docqueue.commands import queue_upload


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
    document = queue_upload(session, owner_id, filename, "application/pdf", io.BytesIO(data or make_pdf(["hello"])), priority)
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


def make_tiff(pages: int, width: int = 64, height: int = 48) -> bytes:
    """A multi-page grayscale TIFF written by hand (PyMuPDF cannot write TIFF, and we need no imaging library)."""
    out = bytearray(b"II" + struct.pack("<HI", 42, 0))
    previous_link = 4  # where the offset of the next IFD goes
    for page in range(pages):
        pixels_at = len(out)
        out += bytes((x * 4 + page * 60) % 256 for _ in range(height) for x in range(width))
        ifd_at = len(out)
        struct.pack_into("<I", out, previous_link, ifd_at)
        # (tag, type: 3 SHORT / 4 LONG, value)
        entries = [(256, 4, width), (257, 4, height), (258, 3, 8), (259, 3, 1), (262, 3, 1),
                   (273, 4, pixels_at), (277, 3, 1), (278, 4, height), (279, 4, width * height)]
        out += struct.pack("<H", len(entries))
        for tag, kind, value in entries:
            out += struct.pack("<HHII", tag, kind, 1, value)
        previous_link = len(out)
        out += struct.pack("<I", 0)
    return bytes(out)


def make_long_pdf(pages: int, text_operations: int) -> bytes:
    """A `pages`-page PDF, each page like `make_slow_pdf(text_operations)` but saying its number.

    Long to extract page after page with little memory per page: the stage to interrupt mid-way.
    """
    document = pymupdf.open()
    for number in range(1, pages + 1):
        page = document.new_page()
        page.insert_text((72, 72), "x")
        font = page.get_fonts()[0][4]
        stream = (b"BT /" + font.encode() + b" 11 Tf 72 720 Td (page %d ) Tj " % number
                  + b"(slow ) Tj 0.01 0 Td " * text_operations + b"ET")
        document.update_stream(page.get_contents()[0], stream)
    return document.tobytes(deflate=True)
