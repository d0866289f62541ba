"""Reading and hashing the walked files concurrently, never more than MAX_CONCURRENT_IO at once.

Each file's type is sniffed from its bytes by the `inspect` stage's own
`sniff_type`, so ingest refuses exactly what the pipeline would. Files are
hashed in 1 MiB reads; only small ones keep their bytes for the batch
insert, larger ones are read again, streamed, when stored.
"""

from __future__ import annotations

import errno
import hashlib
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from itertools import islice
from typing import BinaryIO, TypeVar

from docqueue.documents import UploadRejected, clean_filename
from docqueue.errors import DocumentRejected
from docqueue.ingest.walk import Candidate, Rejection, too_large_reason
from docqueue.stages.inspect import sniff_type

READ_BYTES = 1024 * 1024
#: Files up to this size keep their bytes in memory until their batch is stored (≤ 64 MiB a batch).
INLINE_BYTES = 64 * 1024
#: Files one reading task handles, one after another: fewer, larger tasks cost less thread hand-off per file.
FILES_PER_TASK = 16

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class ReadFile:
    """A file that can become a document."""

    candidate: Candidate
    size: int
    sha256: str
    #: PyMuPDF's format name, as `inspect` will find it.
    detected_type: str
    #: The bytes, for small files; None means "read it again when storing".
    data: bytes | None


def open_walked(path: str) -> BinaryIO:
    """Open a walked file for reading, refusing (ELOOP) a symbolic link put in its place since the walk."""
    return os.fdopen(os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC), "rb")


def read_file(candidate: Candidate, max_bytes: int | None = None) -> ReadFile | Rejection:
    """Sniff and hash one file, streaming it; a Rejection with the reason if it cannot be a document."""
    try:
        # A name of only invisible characters (a soft hyphen) leaves nothing to store and show: say so here.
        clean_filename(candidate.display)
    except UploadRejected:
        return Rejection(candidate.display, "the file's name has no visible characters", candidate.size)
    try:
        detected_type = sniff_type(candidate.path)
        digest = hashlib.sha256()
        size = 0
        kept = bytearray()
        with open_walked(candidate.path) as handle:
            while chunk := handle.read(READ_BYTES):
                digest.update(chunk)
                size += len(chunk)
                if size <= INLINE_BYTES:
                    kept += chunk
    except DocumentRejected as rejection:
        return Rejection(candidate.display, str(rejection), candidate.size)
    except OSError as error:
        if error.errno == errno.ELOOP:
            return Rejection(candidate.display, "symbolic link (since the walk): not followed", candidate.size)
        return Rejection(candidate.display, f"cannot read: {error.strerror or error}", candidate.size)
    if size == 0:
        return Rejection(candidate.display, "the file is empty", candidate.size)
    if max_bytes is not None and size > max_bytes:
        return Rejection(candidate.display, too_large_reason(max_bytes), candidate.size)
    return ReadFile(
        candidate=candidate,
        size=size,
        sha256=digest.hexdigest(),
        detected_type=detected_type,
        data=bytes(kept) if size <= INLINE_BYTES else None,
    )


def _bounded_map(function: Callable[[T], R], items: Iterable[T], workers: int) -> Iterator[R]:
    """`map` on a thread pool with at most `workers` calls submitted at once, results in order."""
    source = iter(items)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ingest-read") as pool:
        running: deque[Future[R]] = deque(pool.submit(function, item) for item in islice(source, workers))
        try:
            while running:
                result = running.popleft().result()
                for item in islice(source, 1):
                    running.append(pool.submit(function, item))
                yield result
        finally:
            # Ctrl-C or an early stop: drop what has not started instead of reading it all.
            for future in running:
                future.cancel()


def read_files(
    candidates: list[Candidate], max_concurrent: int, max_bytes: int | None = None
) -> Iterator[ReadFile | Rejection]:
    """Every candidate read, in walk order, at most `max_concurrent` files open at once."""
    tasks = (candidates[start : start + FILES_PER_TASK] for start in range(0, len(candidates), FILES_PER_TASK))
    for results in _bounded_map(lambda task: [read_file(c, max_bytes) for c in task], tasks, max_concurrent):
        yield from results
