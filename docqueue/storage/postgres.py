"""Blob store in Postgres: files as ordered 1 MiB chunks.

Chunks keep every statement and buffer small whatever the file size, and
writing inside the caller's transaction makes an upload atomic with its
document row and queue item.

Round trips, not bytes, bound throughput here, so a blob costs as few
statements as it can: `put` replaces a key without deleting it first (each
statement upserts up to CHUNKS_PER_STATEMENT chunks, and its last one also
drops the chunks past the new end, of a longer blob stored before), so a
small new file is one statement and a retry that rewrites a key stays
correct; `put_many` writes keys nobody used yet with one COPY.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import BinaryIO

from sqlalchemy import delete, func, select, text
from sqlalchemy.orm import Session

from docqueue.db import copy_rows
from docqueue.models import BlobChunk

CHUNK_BYTES = 1024 * 1024
#: Chunks per INSERT: round trips, not bytes, bound throughput here.
CHUNKS_PER_STATEMENT = 8


@dataclass(frozen=True)
class PostgresBlob:
    size: int
    sha256: str


class PostgresBlobStore:
    def __init__(self, session: Session) -> None:
        self.session = session

    def put(self, key: str, stream: BinaryIO) -> PostgresBlob:
        """Store everything `stream` yields under `key`, replacing what was there.

        One statement per CHUNKS_PER_STATEMENT chunks (one for a file under
        8 MiB), with no DELETE first: each upserts its chunks, and the last
        also removes those past the new end that a longer blob left.
        """
        digest = hashlib.sha256()
        size = seq = 0
        batch: list[bytes] = []
        chunk = stream.read(CHUNK_BYTES)
        while chunk:
            digest.update(chunk)
            size += len(chunk)
            batch.append(chunk)
            seq += 1
            chunk = stream.read(CHUNK_BYTES)
            if len(batch) == CHUNKS_PER_STATEMENT or not chunk:
                self._upsert(key, seq - len(batch), batch, end=None if chunk else seq)
                batch = []
        if seq == 0:
            self._upsert(key, 0, [], end=0)
        return PostgresBlob(size=size, sha256=digest.hexdigest())

    def _upsert(self, key: str, first_seq: int, chunks: list[bytes], end: int | None) -> None:
        """Write `chunks` as chunks `first_seq`... of `key`, over any there; with `end`, drop chunks from `end` on.

        The DELETE and the INSERT touch different rows (seq >= end and seq < end), so one statement does
        both. Each chunk is a parameter of its own: bytes go to Postgres in binary, an array of them would not.
        """
        params: dict = {"key": key, "end": end}
        rows = []
        for offset, chunk in enumerate(chunks):
            params[f"seq{offset}"], params[f"data{offset}"] = first_seq + offset, chunk
            rows.append(f"(:key, :seq{offset}, :data{offset})")
        delete_past_end = "DELETE FROM blob_chunks WHERE blob_key = :key AND seq >= :end"
        if not rows:
            self.session.execute(text(delete_past_end), params)
            return
        self.session.execute(
            text(
                f"""
                WITH past_end AS ({delete_past_end})
                INSERT INTO blob_chunks (blob_key, seq, data) VALUES {", ".join(rows)}
                ON CONFLICT (blob_key, seq) DO UPDATE SET data = EXCLUDED.data
                """
            ),
            params,
        )

    def put_many(self, blobs: Iterable[tuple[str, BinaryIO]]) -> list[PostgresBlob]:
        """Store many new blobs (keys nobody used yet) with one COPY, streamed, not one INSERT per file.

        For bulk ingest: a thousand small files are one statement; large ones
        pass through in 1 MiB chunks without being held whole.
        """
        stored = []
        with copy_rows(
            self.session,
            "COPY blob_chunks (blob_key, seq, data) FROM STDIN (FORMAT BINARY)",
            ["varchar", "int4", "bytea"],
        ) as copy:
            for key, stream in blobs:
                digest = hashlib.sha256()
                size = seq = 0
                while chunk := stream.read(CHUNK_BYTES):
                    digest.update(chunk)
                    size += len(chunk)
                    copy.write_row((key, seq, chunk))
                    seq += 1
                stored.append(PostgresBlob(size=size, sha256=digest.hexdigest()))
        return stored

    def download_to(self, key: str, target: BinaryIO) -> int:
        """Write the blob's bytes to `target` chunk by chunk; return how many."""
        # The first chunk comes with the count of chunks in one plain query: most files are one chunk, and a
        # streaming cursor costs four round trips (declare, fetch, fetch, close) however small the file.
        first = self.session.execute(
            select(BlobChunk.data, func.count().over())
            .where(BlobChunk.blob_key == key)
            .order_by(BlobChunk.seq)
            .limit(1)
        ).first()
        if first is None:
            return 0
        target.write(first.data)
        written = len(first.data)
        if first[1] == 1:
            return written
        # The rest one chunk a fetch: each crosses as hex text (2 MiB in libpq's result, then 1 MiB of bytes), and
        # four a fetch raised the worker's peak by 23 MB for an 8 MB file, against 9; a round trip a MiB costs
        # ~0.2 ms.
        rows = self.session.execute(
            select(BlobChunk.data).where(BlobChunk.blob_key == key).order_by(BlobChunk.seq).offset(1),
            execution_options={"yield_per": 1},
        )
        for (data,) in rows:
            target.write(data)
            written += len(data)
        return written

    def delete(self, key: str) -> None:
        self.session.execute(delete(BlobChunk).where(BlobChunk.blob_key == key))
