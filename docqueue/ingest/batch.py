"""Storing one batch of read files: documents, their bytes and queue rows in one transaction.

A batch costs the same handful of statements whatever its size and
bytes (PITFALLS: round trips, not rows, bound throughput here); the rows
themselves go in by binary COPY:

1. a transaction-scoped advisory lock on the owner, so two imports of the
   same user (a CLI run and a folder upload) cannot both add a file;
2. which of the batch's hashes the owner already has (dedupe, by the
   `documents (owner_id, sha256)` index);
2b. the owner's storage quota and use, their user row locked as an upload's
   check locks it (`quotas.locked_storage`): files that would pass it are
   rejected with the reason (and 6b. the bytes stored added to that use);
3. ids for the new documents, drawn from their sequence in one query;
4. the bytes (`BlobStore.put_many`: one COPY);
5. the documents (COPY);
6. their queue rows, `DocumentQueueService.enqueue_many` (the one definition of a new queue row);
7. the run record's counts and rejected files (`runs.record_batch`).

A file that changed between hashing and storing is refused and its bytes
dropped in the same transaction.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import closing
from typing import BinaryIO

from sqlalchemy import text
from sqlalchemy.orm import Session

from docqueue import quotas
from docqueue.db import copy_rows
from docqueue.documents import clean_filename
from docqueue.ingest import runs
from docqueue.ingest.reading import ReadFile, open_walked
from docqueue.ingest.runs import BatchResult
from docqueue.ingest.walk import Rejection
from docqueue.pipeline import STAGE_NAMES
from docqueue.queue import DocumentQueueService
from docqueue.stages.inspect import SUPPORTED_TYPES
from docqueue.statuses import QueueLane
from docqueue.storage import blob_store, original_file_key

#: PyMuPDF format name -> the MIME type stored as the document's content type.
CONTENT_TYPE_FOR = {name: mime for mime, name in SUPPORTED_TYPES.items()}


# Which of the batch's hashes the owner already has: one index probe per hash. A plain
# `sha256 = ANY(...)` lets the planner, on a table that grew since it was last analysed
# (the first big import), scan all of the owner's documents instead: each batch then
# cost more than the one before (measured: 0.15 s growing to 2 s a batch by 30,000 files).
_ALREADY_THERE = """
    SELECT h.sha256 FROM unnest(CAST(:hashes AS text[])) AS h (sha256)
    CROSS JOIN LATERAL (
        SELECT 1 FROM documents d WHERE d.owner_id = :owner AND d.sha256 = h.sha256 LIMIT 1
    ) found
"""


def _streams(files: list[ReadFile], ids: list[int]) -> Iterator[tuple[str, BinaryIO]]:
    """Each file's key and bytes, a large file opened only when its turn comes and closed before the next.

    `put_many` reads each stream to its end before taking the next, so one
    file is open at a time: opening a whole batch first ran out of file
    descriptors (a 300-file batch under `ulimit -n 128` refused 176 files).
    """
    for document_id, read in zip(ids, files):
        if read.data is not None:
            yield original_file_key(document_id), io.BytesIO(read.data)
            continue
        try:
            handle = open_walked(read.candidate.path)
        except OSError:
            handle = io.BytesIO()  # gone (or a link) since it was read: stored empty, then refused by its hash
        with handle:
            yield original_file_key(document_id), handle


def _store_bytes(session: Session, files: list[ReadFile], ids: list[int]) -> list[bool]:
    """Write each file's bytes under its new document's key; whether each still has the hash it was read with."""
    with closing(_streams(files, ids)) as streams:
        stored = blob_store(session).put_many(streams)
    return [blob.sha256 == read.sha256 and blob.size == read.size for blob, read in zip(stored, files)]


def store_batch(
    session: Session,
    owner_id: int,
    files: list[ReadFile],
    rejections: list[Rejection],
    *,
    run_id: int | None,
    lane: QueueLane = QueueLane.BULK,
    priority: int | None = None,
    dry_run: bool = False,
) -> BatchResult:
    """Add the files the owner does not have yet, queue them, and record the batch; commits (or, dry, rolls back)."""
    result = BatchResult(rejections=list(rejections))
    try:
        session.execute(
            text("SELECT pg_advisory_xact_lock(hashtext('docqueue.ingest'), CAST(:owner AS int))"), {"owner": owner_id}
        )
        existing = set(
            session.execute(
                text(_ALREADY_THERE),
                {"owner": owner_id, "hashes": sorted({read.sha256 for read in files})},
            ).scalars()
        )
        new: list[ReadFile] = []
        for read in files:
            if read.sha256 in existing:
                result.duplicates += 1
            else:
                existing.add(read.sha256)  # a second copy within this batch is a duplicate too
                new.append(read)
        if new:
            new = _within_quota(session, owner_id, new, result)
        if new and not dry_run:
            ids = list(
                session.execute(
                    text("SELECT nextval(pg_get_serial_sequence('documents', 'id')) FROM generate_series(1, :n)"),
                    {"n": len(new)},
                ).scalars()
            )
            unchanged = _store_bytes(session, new, ids)
            changed_keys = [original_file_key(i) for i, same in zip(ids, unchanged) if not same]
            if changed_keys:
                session.execute(
                    text("DELETE FROM blob_chunks WHERE blob_key = ANY(CAST(:keys AS text[]))"), {"keys": changed_keys}
                )
                result.rejections += [
                    Rejection(read.candidate.display, "the file changed while it was being ingested: run again")
                    for read, same in zip(new, unchanged)
                    if not same
                ]
            kept = [(i, read) for i, read, same in zip(ids, new, unchanged) if same]
            _insert_documents(session, owner_id, kept, run_id)
            result.added = DocumentQueueService(session).enqueue_many([i for i, _ in kept], STAGE_NAMES, lane, priority)
            result.bytes_added = sum(read.size for _, read in kept)
            quotas.add_storage(session, owner_id, result.bytes_added)
        elif dry_run:
            result.added = len(new)
            result.bytes_added = sum(read.size for read in new)
        if run_id is not None and not dry_run:
            runs.record_batch(session, run_id, result, seen=len(files) + len(rejections))
        if dry_run:
            session.rollback()
        else:
            session.commit()
    except BaseException:
        session.rollback()
        raise
    return result


def _within_quota(session: Session, owner_id: int, new: list[ReadFile], result: BatchResult) -> list[ReadFile]:
    """The files of `new` that fit the owner's storage quota, in order; the others go to the rejections."""
    quota, stored = quotas.locked_storage(session, owner_id)
    kept = []
    for read in new:
        if stored + read.size > quota:
            result.rejections.append(
                Rejection(read.candidate.display, quotas.storage_refusal(quota, stored, read.size))
            )
        else:
            stored += read.size
            kept.append(read)
    return kept


def _insert_documents(
    session: Session, owner_id: int, documents: list[tuple[int, ReadFile]], run_id: int | None
) -> None:
    """The documents rows, with the ids drawn for them and the run that adds them, in one COPY."""
    columns = "id, owner_id, filename, content_type, size_bytes, sha256, ingest_run_id"
    with copy_rows(
        session,
        f"COPY documents ({columns}) FROM STDIN (FORMAT BINARY)",
        ["int8", "int8", "varchar", "varchar", "int8", "varchar", "int8"],
    ) as copy:
        for document_id, read in documents:
            copy.write_row(
                (
                    document_id,
                    owner_id,
                    clean_filename(read.candidate.display),
                    CONTENT_TYPE_FOR[read.detected_type],
                    read.size,
                    read.sha256,
                    run_id,
                )
            )
