"""Stage `chunk`: the run's text in overlapping chunks that remember their pages.

It reads page texts from Postgres and writes chunks back, with no file and no
PyMuPDF, so it runs in the worker thread rather than taking a PDF process. It
is on the CPU lane all the same: it calls no outside service, and so the
worker that extracted a document's text goes on to chunk it without a
message. Chunks are written in batches as they are made, each once it holds
CHUNK_BATCH_CHARS characters (a quarter while memory is tight) or
BATCH_SECONDS after it began (see `checkpoints`), ROWS_PER_STATEMENT chunks
a statement; splitting is deterministic, so a retry skips the chunks
committed before its checkpoint instead of writing them again. It stops at
MAX_DOCUMENT_CHUNKS and marks the cut on the document (`docqueue/budgets.py`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from sqlalchemy.orm import Session

from docqueue.budgets import chunks_cut, record_budget_cut
from docqueue.db import session_scope
from docqueue.jobs import Claim
from docqueue.results import batched
from docqueue.results.chunks import Chunk, copy_chunks, save_chunks, split_into_chunks, stream_page_texts, text_length
from docqueue.settings import get_settings
from docqueue.stages.checkpoints import BatchBudget, committing_batch
from docqueue.stages.stage import OnePass, Read, Reading, Stage


@dataclass(frozen=True)
class ChunkSummary:
    chunks: int
    #: The page the last chunk ends on when MAX_DOCUMENT_CHUNKS stopped chunking, else None.
    cut_at_page: int | None = None


#: Characters of chunks a batch holds before it is written (a quarter while memory is tight).
CHUNK_BATCH_CHARS = 4_000_000


class BoundedChunks:
    """The chunks of a run's pages [(page number, text)], in order, up to MAX_DOCUMENT_CHUNKS; once iterated,
    `cut_at_page` is the page the last chunk ends on if that limit stopped them, else None."""

    def __init__(self, pages: Iterable[tuple[int, str]]) -> None:
        settings = get_settings()
        self._chunks = split_into_chunks(pages, settings.chunk_size_chars, settings.chunk_overlap_chars)
        self._most = settings.max_document_chunks
        self.cut_at_page: int | None = None

    def __iter__(self) -> Iterator[Chunk]:
        last_page = 0
        for chunk in self._chunks:
            if chunk.seq > self._most:
                self.cut_at_page = last_page
                return
            last_page = chunk.page_end
            yield chunk


def run(path: None, claim: Claim) -> ChunkSummary:
    """Split the run's page texts into chunks and store them in batches after the checkpoint."""
    settings = get_settings()
    batch: list[Chunk] = []
    budget = BatchBudget(CHUNK_BATCH_CHARS)

    def commit(total: int) -> None:
        with committing_batch(claim, added=len(batch), total=total, unit="chunks", checkpoint=last_seq) as session:
            for rows in batched(batch, settings.rows_per_statement):
                save_chunks(session, claim.document_id, claim.job_id, rows)
        batch.clear()
        budget.clear()

    with session_scope() as reader:
        last_seq = claim.checkpoint
        estimate = None
        chunks = BoundedChunks(stream_page_texts(reader, claim.job_id))
        for chunk in chunks:
            if chunk.seq <= last_seq:
                continue
            batch.append(chunk)
            last_seq = chunk.seq
            budget.add(len(chunk.text))
            if budget.due():
                if estimate is None:
                    # For live progress until the last commit says the real number (one that commits at once
                    # needs none).
                    estimate = text_length(reader, claim.job_id) // max(
                        settings.chunk_size_chars - settings.chunk_overlap_chars, 1
                    )
                commit(min(max(estimate, last_seq + 1), settings.max_document_chunks))
    commit(last_seq)
    return ChunkSummary(chunks=last_seq, cut_at_page=chunks.cut_at_page)


def record(session: Session, claim: Claim, summary: ChunkSummary) -> None:
    """Chunks are written batch by batch; only a cut at MAX_DOCUMENT_CHUNKS is left to record."""
    if summary.cut_at_page is not None:
        record_budget_cut(session, claim.document_id, "chunks", chunks_cut(summary.cut_at_page))


def read_in_pass(reading: Reading) -> Read:
    """The chunks of the text that extract_text read in the same pass (a small document's one pass)."""
    chunks = BoundedChunks((number, text) for number, text, _, _ in reading.read["extract_text"].outputs)
    made = list(chunks)
    return Read(ChunkSummary(chunks=len(made), cut_at_page=chunks.cut_at_page), made, ("chunks", len(made)))


def store_in_pass(session: Session, claim: Claim, chunks: list[Chunk]) -> None:
    copy_chunks(session, claim.document_id, claim.job_id, chunks)


STAGE = Stage(
    name="chunk",
    description="split the text into overlapping chunks that remember their pages",
    run=run,
    record=record,
    time_limit_setting="chunking_time_limit_seconds",
    in_worker_thread=True,
    weight=1,
    optional=True,
    one_pass=OnePass(read_in_pass, store_in_pass),
)
