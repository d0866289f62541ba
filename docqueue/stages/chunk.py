"""Stage `chunk`: the document's text in overlapping chunks that remember their pages.

It reads page texts from Postgres and writes chunks back, with no file and no
PyMuPDF, so it runs in the worker thread (IO lane) rather than taking a PDF
process. Chunks are written ROWS_PER_STATEMENT at a time as they are made.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from docqueue.db import session_scope
from docqueue.queue import Claim, DocumentQueueService
from docqueue.results.chunks import Chunk, drop_chunks_after, save_chunks, split_into_chunks, stream_page_texts
from docqueue.settings import get_settings
from docqueue.stages.stage import Lane, Stage


@dataclass(frozen=True)
class ChunkSummary:
    chunks: int


def _write(claim: Claim, chunks: list[Chunk]) -> None:
    with session_scope() as session:
        DocumentQueueService(session).hold_lease(claim)
        save_chunks(session, claim.document_id, claim.job_id, chunks)


def run(path: None, claim: Claim) -> ChunkSummary:
    """Split the stored page texts into chunks and store them in batches."""
    settings = get_settings()
    count = 0
    batch: list[Chunk] = []
    with session_scope() as reader:
        pages = stream_page_texts(reader, claim.document_id)
        for chunk in split_into_chunks(pages, settings.chunk_size_chars, settings.chunk_overlap_chars):
            batch.append(chunk)
            count += 1
            if len(batch) == settings.rows_per_statement:
                _write(claim, batch)
                batch = []
    if batch:
        _write(claim, batch)
    return ChunkSummary(chunks=count)


def record(session: Session, claim: Claim, summary: ChunkSummary) -> None:
    drop_chunks_after(session, claim.document_id, summary.chunks)


STAGE = Stage(
    name="chunk",
    description="split the text into overlapping chunks that remember their pages",
    run=run,
    record=record,
    lane=Lane.IO,
    weight=1,
)
