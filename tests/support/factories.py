"""Building test inputs: documents in the database, plain PDFs and TIFFs made on the spot (files built to be
hostile are in `hostile_files.py`)."""

from __future__ import annotations

import io
import struct

import pymupdf
import sqlalchemy as sa

from docqueue.commands import queue_upload
from docqueue.pipeline import STAGE_NAMES
from docqueue.stages import extract_text
from tests.support.stage_records import claim_next, inspect_alone


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
    document = queue_upload(
        session, owner_id, filename, "application/pdf", io.BytesIO(data or make_pdf(["hello"])), priority
    )
    session.commit()
    return document.id


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
        entries = [
            (256, 4, width),
            (257, 4, height),
            (258, 3, 8),
            (259, 3, 1),
            (262, 3, 1),
            (273, 4, pixels_at),
            (277, 3, 1),
            (278, 4, height),
            (279, 4, width * height),
        ]
        out += struct.pack("<H", len(entries))
        for tag, kind, value in entries:
            out += struct.pack("<HHII", tag, kind, 1, value)
        previous_link = len(out)
        out += struct.pack("<I", 0)
    return bytes(out)


def insert_documents(session, owner_id: int, count: int, *, same_time_every: int = 3) -> list[int]:
    """`count` documents named doc-0000.pdf..., every third one failed; runs of them share one upload time.

    Shared times are what a bulk upload produces, and what a cursor on time alone would skip or repeat.
    """
    rows = session.execute(
        sa.text(
            "INSERT INTO documents (owner_id, filename, content_type, size_bytes, sha256, status, created_at) "
            "SELECT :owner, format('doc-%s.pdf', lpad(n::text, 4, '0')), 'application/pdf', 1, '', "
            "CASE WHEN n % 3 = 0 THEN 'failed' ELSE 'completed' END, "
            "timestamptz '2025-01-01' + (n / :same) * interval '1 second' "
            "FROM generate_series(0, :count - 1) AS n RETURNING id"
        ),
        {"owner": owner_id, "count": count, "same": same_time_every},
    )
    ids = [row.id for row in rows]
    session.commit()
    return ids


# -- hostile files, made by code ------------------------------------------------


def add_bulk_documents(session, owner_id: int, count: int, *, priority=None) -> list[int]:
    """`count` imported documents waiting in the bulk lane, queued as an ingest batch queues them; their ids."""
    from docqueue.documents import create_document
    from docqueue.queue import DocumentQueueService
    from docqueue.statuses import QueueLane

    pdf = make_pdf(["imported"])
    ids = [
        create_document(session, owner_id, f"import-{n}.pdf", "application/pdf", io.BytesIO(pdf)).id
        for n in range(count)
    ]
    DocumentQueueService(session).enqueue_many(ids, STAGE_NAMES, QueueLane.BULK, priority)
    session.commit()
    return ids


def document_with_pages(session, owner_id: int, monkeypatch, texts: list[str]):
    """A document whose text stage is part way: `texts` stored as its pages, the document still processing.
    Returns the claim on its text stage (`.document_id` is the document)."""
    document_id = add_document(session, owner_id, make_pdf([f"page {n}" for n in range(1, len(texts) + 1)]))
    inspect_alone(session, document_id, monkeypatch)
    claim = claim_next(session, document_id)
    extract_text._write_pages(claim, [(n, text, False, None) for n, text in enumerate(texts, 1)], len(texts))
    return claim
