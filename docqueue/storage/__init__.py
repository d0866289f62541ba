"""Durable file storage that both web and worker dynos reach.

Web and worker share no disk on a PaaS, so the default store keeps bytes in
Postgres. Callers use the `BlobStore` protocol only, so an object store can
follow without touching them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import BinaryIO, Protocol

from sqlalchemy.orm import Session

from docqueue.storage.postgres import PostgresBlobStore


class StoredBlob(Protocol):
    size: int
    sha256: str


class BlobStore(Protocol):
    def put(self, key: str, stream: BinaryIO) -> StoredBlob: ...

    def put_many(self, blobs: Iterable[tuple[str, BinaryIO]]) -> list[StoredBlob]: ...

    def download_to(self, key: str, target: BinaryIO) -> int: ...

    def delete(self, key: str) -> None: ...


def original_file_key(document_id: int) -> str:
    """Where a document's uploaded bytes live."""
    return f"documents/{document_id}/original"


def blob_store(session: Session) -> BlobStore:
    """The configured store, working inside `session`'s transaction."""
    return PostgresBlobStore(session)
