"""Chunks: overlapping slices of a document's text that remember their pages."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from docqueue.db import copy_rows
from docqueue.models import DocumentChunk, DocumentPage


@dataclass(frozen=True)
class Chunk:
    seq: int
    text: str
    page_start: int
    page_end: int


#: Pages joined with a blank line, so a chunk spanning pages keeps their break.
PAGE_SEPARATOR = "\n\n"


def _cut(text: str, size: int) -> int:
    """Where to end a chunk of at most `size` characters: at the last whitespace in its final fifth, if any."""
    window_start = size - size // 5
    space = max(text.rfind(" ", window_start, size), text.rfind("\n", window_start, size))
    return space + 1 if space > 0 else size


def split_into_chunks(pages: Iterable[tuple[int, str]], size: int, overlap: int) -> Iterator[Chunk]:
    """Chunks of at most `size` characters, each starting `overlap` characters before the last one ended.

    Reads `pages` [(page number, text)] one at a time, holding at most a
    chunk and a page in memory. Empty pages are passed over.
    """
    overlap = min(overlap, size // 2)
    buffer = ""
    # (offset in buffer where a page's text starts, page number), in order.
    marks: list[tuple[int, int]] = []
    carried = 0  # characters at the start of `buffer` already in the previous chunk
    seq = 1

    def pages_between(end: int) -> tuple[int, int]:
        spanned = [page for offset, page in marks if offset < end]
        return spanned[0], spanned[-1]

    for page_number, page_text in pages:
        if not page_text.strip():
            continue
        if buffer:
            buffer += PAGE_SEPARATOR
        marks.append((len(buffer), page_number))
        buffer += page_text
        while len(buffer) >= size:
            end = _cut(buffer, size)
            first, last = pages_between(end)
            yield Chunk(seq, buffer[:end], first, last)
            seq += 1
            step = max(end - overlap, 1)
            buffer = buffer[step:]
            carried = end - step
            # Keep the page the new start falls in, and every later one.
            shifted = [(offset - step, page) for offset, page in marks]
            starts_before = [mark for mark in shifted if mark[0] <= 0]
            marks = [(0, starts_before[-1][1])] if starts_before else []
            marks += [mark for mark in shifted if mark[0] > 0]
    if len(buffer) > carried and buffer.strip():
        first, last = pages_between(len(buffer))
        yield Chunk(seq, buffer, first, last)


def stream_page_texts(session: Session, job_id: int) -> Iterator[tuple[int, str]]:
    """(page number, text) of run `job_id`'s pages in order, fetched a few dozen at a time."""
    rows = session.execute(
        select(DocumentPage.page_number, DocumentPage.text)
        .where(DocumentPage.job_id == job_id)
        .order_by(DocumentPage.page_number),
        execution_options={"yield_per": 50},
    )
    yield from ((page_number, page_text) for page_number, page_text in rows)


def text_length(session: Session, job_id: int) -> int:
    """Characters of run `job_id`'s text: to estimate how many chunks it makes."""
    return session.scalar(
        select(func.coalesce(func.sum(DocumentPage.char_count), 0)).where(DocumentPage.job_id == job_id)
    )


def save_chunks(session: Session, document_id: int, job_id: int, chunks: list[Chunk]) -> None:
    """Upsert a batch of run `job_id`'s chunks in one statement: a retry rewrites, never duplicates."""
    statement = insert(DocumentChunk).values(
        [
            {
                "document_id": document_id,
                "seq": c.seq,
                "job_id": job_id,
                "text": c.text,
                "page_start": c.page_start,
                "page_end": c.page_end,
            }
            for c in chunks
        ]
    )
    excluded = statement.excluded
    session.execute(
        statement.on_conflict_do_update(
            index_elements=[DocumentChunk.job_id, DocumentChunk.seq],
            set_={
                "job_id": excluded.job_id,
                "text": excluded.text,
                "page_start": excluded.page_start,
                "page_end": excluded.page_end,
                "embedding_model": None,
            },
        )
    )


def copy_chunks(session: Session, document_id: int, job_id: int, chunks: list[Chunk]) -> None:
    """Insert run `job_id`'s chunks with one COPY: for a run that has none yet (a small document's one pass)."""
    with copy_rows(
        session,
        "COPY document_chunks (job_id, seq, document_id, text, page_start, page_end) FROM STDIN (FORMAT BINARY)",
        ["int8", "int4", "int8", "text", "int4", "int4"],
    ) as copy:
        for c in chunks:
            copy.write_row((job_id, c.seq, document_id, c.text, c.page_start, c.page_end))


def list_chunks(session: Session, job_id: int | None, after_seq: int = 0, limit: int = 100) -> list[DocumentChunk]:
    """Up to `limit` of run `job_id`'s chunks with seq > `after_seq`, in order (seq counts from 1)."""
    return list(
        session.scalars(
            select(DocumentChunk)
            .where(DocumentChunk.job_id == job_id, DocumentChunk.seq > after_seq)
            .order_by(DocumentChunk.seq)
            .limit(limit)
        )
    )
