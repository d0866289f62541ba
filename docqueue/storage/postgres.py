"""Blob store in Postgres: files as ordered 1 MiB chunks.

Chunks keep every statement and buffer small whatever the file size, and
writing inside the caller's transaction makes an upload atomic with its
document row and queue item.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import BinaryIO

from sqlalchemy import delete, insert, select
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
        """Store everything `stream` yields under `key`, replacing what was there."""
        self.delete(key)
        digest = hashlib.sha256()
        size = 0
        seq = 0
        batch: list[dict] = []
        while chunk := stream.read(CHUNK_BYTES):
            digest.update(chunk)
            size += len(chunk)
            batch.append({"blob_key": key, "seq": seq, "data": chunk})
            seq += 1
            if len(batch) == CHUNKS_PER_STATEMENT:
                self.session.execute(insert(BlobChunk), batch)
                batch = []
        if batch:
            self.session.execute(insert(BlobChunk), batch)
        return PostgresBlob(size=size, sha256=digest.hexdigest())

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
        rows = self.session.execute(
            select(BlobChunk.data).where(BlobChunk.blob_key == key).order_by(BlobChunk.seq),
            execution_options={"yield_per": 4},
        )
        written = 0
        for (data,) in rows:
            target.write(data)
            written += len(data)
        return written

    def delete(self, key: str) -> None:
        self.session.execute(delete(BlobChunk).where(BlobChunk.blob_key == key))
