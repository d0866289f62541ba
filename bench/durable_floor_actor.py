"""The durable floor for bench/pipeline_throughput.py: docqueue's pipeline work, OCR off, stored by hand.

A bare Dramatiq actor, as a careful hand-written worker would be: a message
names a file; the actor reads it with PyMuPDF (every page's text, every
distinct image's bytes, the text's chunks at docqueue's CHUNK_SIZE_CHARS /
CHUNK_OVERLAP_CHARS), then in one transaction inserts a `floor_documents`
row, COPYs its pages, images and chunks, and marks the row done.

Durable as docqueue is: ordinary logged tables in the benchmark's scratch
database, a primary key on each, each document's rows keyed by its id with a
foreign key to it (docqueue's result tables have theirs), committed with the
server's `synchronous_commit`. Text is made storable as docqueue makes it
(`storable_text`: no NUL). No claims, leases, retries, stage records or
status history: what is left is the cost of keeping the results.

The file's own bytes are stored too (`floor_documents.data`): docqueue's
timed window includes storing each upload's bytes (`queue_upload` puts them
in its blob store), so both store them. Byte columns are stored uncompressed
(`STORAGE EXTERNAL`), as docqueue's blob chunks are.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import dramatiq
import psycopg
import pymupdf
import redis
import sqlalchemy as sa
from dramatiq.brokers.redis import RedisBroker

from docqueue.results.chunks import split_into_chunks
from docqueue.settings import get_settings
from docqueue.text_cleaning import storable_text

REDIS_URL = os.environ["REDIS_URL"]
#: A namespace of its own: the bare Dramatiq baseline's worker must not see these messages.
NAMESPACE = f"{os.environ['BENCH_NAMESPACE']}-floor"

counter = redis.Redis.from_url(REDIS_URL)


class CountBoots(dramatiq.Middleware):
    """Counts each worker process once its consumers run: the benchmark times the work, not the start-up."""

    def after_worker_boot(self, broker, worker) -> None:
        counter.incr(f"{NAMESPACE}:booted")


broker = RedisBroker(url=REDIS_URL, namespace=NAMESPACE)
broker.add_middleware(CountBoots())
dramatiq.set_broker(broker)

#: The floor's tables, created empty (run before each measurement).
TABLES = """
DROP TABLE IF EXISTS floor_chunks, floor_images, floor_pages, floor_documents;
CREATE TABLE floor_documents (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text NOT NULL,
    data bytea NOT NULL,
    status text NOT NULL,
    done_at timestamptz
);
ALTER TABLE floor_documents ALTER COLUMN data SET STORAGE EXTERNAL;
CREATE TABLE floor_pages (
    document_id bigint NOT NULL REFERENCES floor_documents ON DELETE CASCADE,
    page_number integer NOT NULL,
    text text NOT NULL,
    PRIMARY KEY (document_id, page_number)
);
CREATE TABLE floor_images (
    document_id bigint NOT NULL REFERENCES floor_documents ON DELETE CASCADE,
    sha256 text NOT NULL,
    page_number integer NOT NULL,
    format text NOT NULL,
    data bytea NOT NULL,
    PRIMARY KEY (document_id, sha256)
);
ALTER TABLE floor_images ALTER COLUMN data SET STORAGE EXTERNAL;
CREATE TABLE floor_chunks (
    document_id bigint NOT NULL REFERENCES floor_documents ON DELETE CASCADE,
    seq integer NOT NULL,
    text text NOT NULL,
    page_start integer NOT NULL,
    page_end integer NOT NULL,
    PRIMARY KEY (document_id, seq)
);
"""


def conninfo(database_url: str) -> str:
    """`database_url` (any scheme docqueue accepts, SQLAlchemy's included) as psycopg takes it."""
    return sa.make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


def read_pdf(data: bytes) -> tuple[list[tuple[int, str]], list[tuple[str, int, str, bytes]]]:
    """Every page's (number, text) and every distinct image's (sha256, first page, format, bytes)."""
    pages: list[tuple[int, str]] = []
    images: dict[str, tuple[str, int, str, bytes]] = {}
    seen: set[int] = set()
    with pymupdf.open(stream=data, filetype="pdf") as document:
        for number, page in enumerate(document, start=1):
            pages.append((number, storable_text(page.get_text())))
            for xref, *_ in page.get_images(full=True):
                if xref in seen:
                    continue
                seen.add(xref)
                image = document.extract_image(xref)
                digest = hashlib.sha256(image["image"]).hexdigest()
                images.setdefault(digest, (digest, number, image["ext"], image["image"]))
    return pages, list(images.values())


_connection: psycopg.Connection | None = None


def _connect() -> psycopg.Connection:
    """This process's connection (one thread a process), opened on first use."""
    global _connection
    if _connection is None or _connection.closed:
        _connection = psycopg.connect(conninfo(os.environ["DATABASE_URL"]), autocommit=True)
    return _connection


def store_file(path: str) -> int:
    """Read the PDF at `path` and store it and its results in one transaction; its document id."""
    data = Path(path).read_bytes()
    pages, images = read_pdf(data)
    settings = get_settings()
    chunks = list(split_into_chunks(pages, settings.chunk_size_chars, settings.chunk_overlap_chars))
    connection = _connect()
    with connection.transaction(), connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO floor_documents (name, data, status) VALUES (%s, %b, 'processing') RETURNING id",
            (Path(path).name, data),
        )
        (document_id,) = cursor.fetchone()
        with cursor.copy("COPY floor_pages (document_id, page_number, text) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["int8", "int4", "text"])
            for number, text in pages:
                copy.write_row((document_id, number, text))
        columns = "document_id, sha256, page_number, format, data"
        with cursor.copy(f"COPY floor_images ({columns}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["int8", "text", "int4", "text", "bytea"])
            for image in images:
                copy.write_row((document_id, *image))
        columns = "document_id, seq, text, page_start, page_end"
        with cursor.copy(f"COPY floor_chunks ({columns}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["int8", "int4", "text", "int4", "int4"])
            for chunk in chunks:
                copy.write_row((document_id, chunk.seq, chunk.text, chunk.page_start, chunk.page_end))
        cursor.execute("UPDATE floor_documents SET status = 'done', done_at = now() WHERE id = %s", (document_id,))
    return document_id


@dramatiq.actor(max_retries=0)
def store_pdf(path: str) -> None:
    """`store_file`, then count it done (or failed, so the benchmark stops waiting at once)."""
    try:
        store_file(path)
    except Exception:
        counter.incr(f"{NAMESPACE}:failed")
        raise
    counter.incr(f"{NAMESPACE}:done")
