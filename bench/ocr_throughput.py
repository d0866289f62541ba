"""OCR pages per second through docqueue's worker, against bare `tesseract` on both cores.

The document: an N-page scan made on the spot (text rendered in grey at
300 dpi as an image-only page, as tests/support/scans.py does), so every page goes
to OCR. Per run, in one run:

1. baseline, bare Tesseract: the same pages rendered to PNM at 300 dpi
   (untimed), then `tesseract page.pnm stdout` on each with
   OMP_THREAD_LIMIT=1, two at a time (both cores), as PITFALLS advises;
   and, for comparison, the same files read by Tesseract's library
   (tesserocr, what docqueue uses) in two processes, its models loaded
   before timing;
2. docqueue: the scan stored and queued in-process (`commands.submit`, as
   an upload is) for a user with background OCR on; the Procfile's `worker`
   (already booted, with the `clock`) runs the whole pipeline. Pages/s over
   the document's time from its first claim (`document_queue.started_at`)
   to `documents.completed_at`, both Postgres times; and over the `ocr`
   stage alone (its stage record's start and finish). docqueue's OCR reads
   each page once (tesserocr, TSV), and detects its orientation (`--psm 0` at 150 dpi)
   only when the reading does not look upright; the pages are split into
   ranges evenly over the PDF processes.

Median of RUNS runs, each with its own scan; the ratio is to bare Tesseract.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/0 \\
        python bench/ocr_throughput.py [N] [RUNS]
"""

from __future__ import annotations

import io
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pymupdf
from benchkit import booted_worker, make_user, query, scanned_pdf, scratch_environment, wait_for


def bare_tesseract(scan: bytes, folder: Path, parallel: int = 2) -> float:
    """Seconds for `tesseract` to read every page of `scan`, rendered to PNM at 300 dpi, `parallel` at a time."""
    paths = []
    with pymupdf.open(stream=scan, filetype="pdf") as document:
        for page in document:
            path = folder / f"page{page.number}.pnm"
            page.get_pixmap(dpi=300, colorspace=pymupdf.csGRAY).save(str(path))
            paths.append(path)
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}

    def read(path: Path) -> None:
        subprocess.run(["tesseract", str(path), "stdout"], env=env, check=True, capture_output=True)

    started = time.perf_counter()
    with ThreadPoolExecutor(parallel) as pool:
        list(pool.map(read, paths))
    return time.perf_counter() - started


_library = None


def _load_library() -> None:
    global _library
    import tesserocr

    from docqueue.settings import get_settings

    _library = tesserocr.PyTessBaseAPI(path=get_settings().tessdata_prefix, lang="eng")


def _library_read(path: str) -> int:
    _library.SetImageFile(path)
    return len(_library.GetUTF8Text())


def bare_library(folder: Path, parallel: int = 2) -> float:
    """Seconds for Tesseract's library to read the PNM pages `bare_tesseract` left in `folder`, `parallel` processes."""
    paths = sorted(str(path) for path in folder.glob("page*.pnm"))
    with multiprocessing.get_context("spawn").Pool(parallel, initializer=_load_library) as pool:
        pool.map(time.sleep, [0.5] * parallel, chunksize=1)  # every process started, its models loaded: untimed
        started = time.perf_counter()
        pool.map(_library_read, paths, chunksize=1)
        return time.perf_counter() - started


def docqueue_ocr(owner_id: int, scan: bytes, pages: int, run: int, worker) -> tuple[float, float]:
    """(Seconds from first claim to completed, seconds of the `ocr` stage) for `scan` through the worker."""
    from docqueue.commands import submit
    from docqueue.db import session_scope

    with session_scope() as session:
        document_id = submit(session, owner_id, f"scan{run}.pdf", "application/pdf", io.BytesIO(scan)).id
    status = wait_for(
        lambda: (
            (s := query("SELECT status FROM documents WHERE id = :d", d=document_id)) in ("completed", "failed") and s
        ),
        interval=0.1,
        what="the scan to be read",
        watch=[worker],
    )
    if status != "completed":
        raise RuntimeError(
            f"document {document_id} {status}: {query('SELECT error FROM documents WHERE id = :d', d=document_id)}"
        )
    read = query("SELECT count(*) FROM document_pages WHERE document_id = :d AND ocr AND char_count > 0", d=document_id)
    if read != pages:
        raise RuntimeError(f"OCR read {read} of {pages} pages")
    whole = query(
        "SELECT extract(epoch FROM d.completed_at - q.started_at) FROM documents d "
        "JOIN document_queue q ON q.document_id = d.id WHERE d.id = :d",
        d=document_id,
    )
    ocr = query(
        "SELECT extract(epoch FROM finished_at - started_at) FROM document_stage_records "
        "WHERE document_id = :d AND stage = 'ocr'",
        d=document_id,
    )
    return float(whole), float(ocr)


def main() -> None:
    pages = int(sys.argv[1]) if len(sys.argv) > 1 else 16
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    scans = [scanned_pdf(pages, seed=seed) for seed in range(runs)]
    bare, library, durable = [], [], []
    with scratch_environment("ocr") as (env, logs), tempfile.TemporaryDirectory() as images:
        owner_id, _ = make_user("ocr@bench", enable_background_ocr=True)
        from docqueue.broker import build_broker

        build_broker()
        with booted_worker(env, logs) as worker:
            for run, scan in enumerate(scans):
                bare.append(bare_tesseract(scan, Path(images)))
                library.append(bare_library(Path(images)))
                durable.append(docqueue_ocr(owner_id, scan, pages, run, worker))
                print(f"run {run + 1}: bare {bare[-1]:.1f} s, docqueue {durable[-1][0]:.1f} s", flush=True)

    base = pages / statistics.median(bare)
    print(f"\n{pages}-page scans at 300 dpi; median of {runs} runs")
    print(f"{'':52} {'seconds':>8} {'pages/s':>8} {'x bare':>7}")
    for name, seconds in (
        ("bare tesseract, 2 at a time (baseline)", statistics.median(bare)),
        ("bare Tesseract library, 2 processes", statistics.median(library)),
        ("docqueue: first claim -> document completed", statistics.median(w for w, _ in durable)),
        ("docqueue: the ocr stage alone", statistics.median(o for _, o in durable)),
    ):
        print(f"{name:52} {seconds:8.2f} {pages / seconds:8.2f} {pages / seconds / base:7.2f}")
    print(
        "settings:",
        " ".join(f"{k}={env.get(k, '(default)')}" for k in ("PDF_WORKER_PROCESSES", "OCR_RANGE_PAGES", "OCR_DPI")),
    )


if __name__ == "__main__":
    main()
