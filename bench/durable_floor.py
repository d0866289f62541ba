"""The durable floor's run and its check, for bench/pipeline_throughput.py (the actor: bench/durable_floor_actor.py).

Not a benchmark itself: `durable_floor` times the floor's actor over the
files and checks its tables hold what the files do; `print_floor_shares`
shows other rows' rates as shares of the floor's.
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

import psycopg
from benchkit import start, stop, wait_for


def durable_floor(paths: list[str], processes: int, workdir: Path) -> tuple[float, str]:
    """Seconds from the first message sent to the last document stored, on `processes` processes of one
    thread each; and `check_floor`'s line on what was stored (outside the timed window)."""
    from bench import durable_floor_actor as actor

    with psycopg.connect(actor.conninfo(os.environ["DATABASE_URL"]), autocommit=True) as connection:
        connection.execute(actor.TABLES)
    booted, done, failed = (f"{actor.NAMESPACE}:{key}" for key in ("booted", "done", "failed"))
    actor.counter.delete(booted, done, failed)
    worker = start(
        f"dramatiq bench.durable_floor_actor --processes {processes} --threads 1", {**os.environ}, workdir / "floor.log"
    )
    try:
        wait_for(
            lambda: int(actor.counter.get(booted) or 0) >= processes,
            timeout=180,
            what="the floor's worker processes to boot",
            watch=[worker],
        )
        time.sleep(1)  # its consumers' first fetch: we time the work, not the start-up

        def all_stored() -> bool:
            if int(actor.counter.get(failed) or 0):
                raise RuntimeError(f"the durable floor failed a document: see {workdir / 'floor.log'}")
            return int(actor.counter.get(done) or 0) >= len(paths)

        began = time.perf_counter()
        for path in paths:
            actor.store_pdf.send(path)
        wait_for(all_stored, what="the durable floor's documents", watch=[worker])
        elapsed = time.perf_counter() - began
    finally:
        stop(worker)
    return elapsed, check_floor(paths)


def check_floor(paths: list[str]) -> str:
    """What the floor's tables hold against what the files hold, as one line; raises if they differ.

    The files' side is read here again: each file's size, pages, distinct
    images and their bytes, and the chunks their text makes.
    """
    from bench import durable_floor_actor as actor
    from docqueue.results.chunks import split_into_chunks
    from docqueue.settings import get_settings

    settings = get_settings()
    held: dict[Path, tuple[int, ...]] = {}
    for path in map(Path, set(paths)):
        pages, images = actor.read_pdf(path.read_bytes())
        chunks = split_into_chunks(pages, settings.chunk_size_chars, settings.chunk_overlap_chars)
        held[path] = (path.stat().st_size, len(pages), len(images), sum(len(i[3]) for i in images), len(list(chunks)))
    expected = (len(paths), len(paths), *(sum(held[Path(p)][k] for p in paths) for k in range(5)))
    with psycopg.connect(actor.conninfo(os.environ["DATABASE_URL"])) as connection:
        stored = connection.execute(
            """SELECT (SELECT count(*) FROM floor_documents),
                      (SELECT count(*) FROM floor_documents WHERE status = 'done'),
                      (SELECT coalesce(sum(octet_length(data)), 0) FROM floor_documents),
                      (SELECT count(*) FROM floor_pages),
                      (SELECT count(*) FROM floor_images),
                      (SELECT coalesce(sum(octet_length(data)), 0) FROM floor_images),
                      (SELECT count(*) FROM floor_chunks)"""
        ).fetchone()
    names = ("documents", "done", "file bytes", "pages", "images", "image bytes", "chunks")
    line = ", ".join(f"{value:,} {name}" for name, value in zip(names, stored))
    if tuple(stored) != expected:
        wanted = ", ".join(f"{value:,} {name}" for name, value in zip(names, expected))
        raise RuntimeError(f"the durable floor's tables hold {line}; the files hold {wanted}")
    return f"floor check: its tables hold what the files do ({line})"


def print_floor_shares(results: dict[str, list[float]], floor: str, count: int) -> None:
    """A table of each row's documents/s over `count` (from its median seconds) and that rate as a share of
    the `floor` row's, in the order of `results`."""
    base = statistics.median(results[floor])
    width = max(map(len, results))
    print(f"{'':{width}} {'docs/s':>9} {'of the floor':>13}")
    for name, samples in results.items():
        median = statistics.median(samples)
        print(f"{name:{width}} {count / median:9.1f} {base / median:13.2f}")
