"""N small PDFs from `docqueue ingest` to completed (OCR off), against the durable floor on the same files.

The files are the corpus PDFs, cycled, each made distinct by a comment line after its end (ingest
skips a file whose bytes it already holds), so the work is real-world PDFs, not generated ones.

1. docqueue: the Procfile's worker and clock (booted), then `docqueue ingest FOLDER --user ...`
   (background OCR off for the user); timed from the start of the ingest to the last document
   completed. The peak memory of each process is sampled while it runs: the worker's tree
   (PSS summed: what it really holds), the ingest command and the clock.
2. the durable floor (bench/durable_floor.py) on the same files: a bare Dramatiq actor that reads
   each file with PyMuPDF and stores its bytes, pages, images and chunks in one transaction.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/0 \\
        python bench/ingest_to_completed.py [N]
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import psutil
from benchkit import PeakRss, booted_worker, make_user, query, scratch_environment, start, wait_for
from durable_floor import durable_floor
from pipeline_throughput import CORPUS

from docqueue.local.procfile import REPO_ROOT

MB = 1024 * 1024


def write_files(folder: Path, count: int) -> list[str]:
    """`count` distinct PDFs under `folder`: the corpus's, cycled, each with its own trailing comment."""
    corpus = sorted(CORPUS.glob("*.pdf"))
    paths = []
    for number in range(count):
        source = corpus[number % len(corpus)]
        path = folder / f"{number:06d}-{source.name}"
        path.write_bytes(source.read_bytes() + f"\n% copy {number}\n".encode())
        paths.append(str(path))
    return paths


def clock_pid(worker_pid: int) -> int | None:
    """The clock the benchmark started beside the worker (its sibling process), if found."""
    for process in psutil.Process().children(recursive=True):
        if process.pid != worker_pid and "clock" in " ".join(process.cmdline()):
            return process.pid
    return None


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    sys.path.insert(0, str(REPO_ROOT))  # for `bench.durable_floor_actor`
    with tempfile.TemporaryDirectory(prefix="docqueue-ingest20-") as temp:
        folder = Path(temp) / "files"
        folder.mkdir()
        paths = write_files(folder, count)
        with scratch_environment("ingest20") as (env, logs):
            make_user("ingest@bench", enable_background_ocr=False)
            with booted_worker(env, logs) as worker, ExitStack() as sampling:
                worker_memory = sampling.enter_context(PeakRss(worker.pid, interval=0.5))
                clock = clock_pid(worker.pid)
                clock_memory = sampling.enter_context(PeakRss(clock, interval=0.5)) if clock else None
                began = time.perf_counter()
                ingest = start(f"docqueue ingest {folder} --user ingest@bench", env, logs / "ingest.log")
                with PeakRss(ingest.pid, interval=0.2) as ingest_memory:
                    if ingest.wait(timeout=3600) != 0:
                        raise RuntimeError(f"the ingest failed: see {logs / 'ingest.log'}")
                ingested = time.perf_counter() - began
                wait_for(
                    lambda: query("SELECT count(*) FROM documents WHERE status = 'completed'") >= count,
                    interval=0.5,
                    timeout=7200,
                    what="every document to complete",
                    watch=[worker],
                )
                elapsed = time.perf_counter() - began
                failed = query("SELECT count(*) FROM documents WHERE status <> 'completed'")
            floor_seconds, floor_check = durable_floor(paths, 2, logs)

    print(f"{count} corpus PDFs (distinct copies), background OCR off")
    print(f"{'run':44} {'seconds':>9} {'docs/s':>8} {'of the floor':>13}")
    print(
        f"{'docqueue: ingest to every document completed':44} {elapsed:9.1f} {count / elapsed:8.1f}"
        f" {floor_seconds / elapsed:13.2f}"
    )
    print(f"{'  of which the ingest command':44} {ingested:9.1f} {count / ingested:8.1f}")
    print(f"{'the durable floor, 2 processes':44} {floor_seconds:9.1f} {count / floor_seconds:8.1f} {1:13.2f}")
    print(f"documents not completed: {failed}")
    print("peak memory while it ran:")
    print(
        f"  worker tree (dramatiq, worker process, PDF processes): PSS {worker_memory.peak_pss / MB:.0f} MB, "
        f"RSS summed {worker_memory.peak / MB:.0f} MB; each: "
        + ", ".join(f"{rss / MB:.0f}" for rss in sorted(worker_memory.peaks.values(), reverse=True))
        + " MB"
    )
    print(f"  ingest command: RSS {ingest_memory.peak / MB:.0f} MB")
    if clock_memory:
        print(f"  clock: RSS {clock_memory.peak / MB:.0f} MB")
    print(floor_check)
    print(
        "settings:",
        " ".join(f"{k}={os.environ.get(k, '(default)')}" for k in ("OCR_CONCURRENT_JOBS", "JOBS_PER_MESSAGE")),
    )


if __name__ == "__main__":
    main()
