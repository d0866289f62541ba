"""A big document through the Procfile worker: wall time, database statements, peak memory, against bare PyMuPDF.

The document: a generated PDF of PAGES pages, each with a paragraph of
text and one image of its own (a distinct 480 × 360 JPEG), so it has PAGES
distinct images; the text layer means OCR is skipped. Per run, in one run:

1. baseline, bare PyMuPDF in one process: open, every page's text, every
   image extracted (`extract_image`), with the process's peak RSS;
2. docqueue: stored and queued in-process (`commands.submit`, as an upload
   is), then the Procfile's `worker` (already booted, with the `clock`)
   runs every stage (inspect, extract_text, extract_images, chunk; the
   others are skipped); timed from the submit to the document `completed`.

Statements: pg_stat_statements is not loadable here (it needs
`shared_preload_libraries`), so the worker is started with
`bench/statement_counter` first on its PYTHONPATH: a `sitecustomize` that
counts, in the worker's master, its worker process and its spawned PDF
processes, every statement psycopg sends, and the COMMITs (see that
module). The figures are the worker's deltas over the run, so its
heartbeats in that time are included; the clock and this script are not.
Peak RSS: the worker's whole process tree (master, worker process, PDF
processes) summed, sampled every 50 ms with psutil; shared pages count once
per process, so it overstates what the tree really holds.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/0 \\
        python bench/big_document.py [PAGES] [RUNS]
"""

from __future__ import annotations

import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy
import pymupdf
from benchkit import (
    PARAGRAPHS,
    STATEMENT_COUNTER,
    PeakRss,
    booted_worker,
    make_user,
    query,
    read_statement_counts,
    scratch_environment,
    wait_for,
)
from PIL import Image

# The baseline's work, run in a process of its own that imports nothing else (its RSS is PyMuPDF's alone):
# open, every page's text, every image extracted. It starts timing when told to on stdin.
BARE_WORK = """
import sys, time, pymupdf
sys.stdin.readline()
started = time.perf_counter()
with pymupdf.open(sys.argv[1]) as document:
    for page in document:
        page.get_text()
        for info in page.get_images(full=True):
            document.extract_image(info[0])
print(time.perf_counter() - started)
"""


def big_pdf(pages: int, seed: int) -> bytes:
    """`pages` pages, each a paragraph and a JPEG of its own (a smooth gradient plus noise, ~30 KB)."""
    rng = numpy.random.default_rng(seed)
    y, x = numpy.mgrid[0:360, 0:480]
    document = pymupdf.open()
    for number in range(pages):
        phase = rng.uniform(0, 6.28, 3)
        channels = [127 + 100 * numpy.sin(x / (40 + 7 * c) + y / (55 + 3 * number % 17) + phase[c]) for c in range(3)]
        pixels = numpy.clip(numpy.dstack(channels) + rng.normal(0, 12, (360, 480, 3)), 0, 255).astype(numpy.uint8)
        jpeg = io.BytesIO()
        Image.fromarray(pixels, "RGB").save(jpeg, "JPEG", quality=80)
        page = document.new_page(width=612, height=792)
        page.insert_textbox(pymupdf.Rect(54, 54, 558, 330), f"Page {number + 1}. " + " ".join(PARAGRAPHS), fontsize=11)
        page.insert_image(pymupdf.Rect(66, 360, 546, 720), stream=jpeg.getvalue())
    return document.tobytes(garbage=3, deflate=True)


def bare_pymupdf(path: str) -> tuple[float, int]:
    """Seconds and peak RSS of BARE_WORK in a fresh process (its import of PyMuPDF untimed but in its RSS)."""
    child = subprocess.Popen(
        [sys.executable, "-c", BARE_WORK, path],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    time.sleep(2)  # let it import before the clock starts; the work starts on the newline
    with PeakRss(child.pid) as rss:
        out, _ = child.communicate("go\n")
    if child.returncode:
        raise RuntimeError("the bare PyMuPDF run failed")
    return float(out.strip()), rss.peak


def docqueue_run(owner_id: int, data: bytes, worker, counts: str, run: int) -> tuple[float, PeakRss, tuple]:
    """Seconds, the tree's RSS peaks and statement counts (delta) of the worker processing `data` once."""
    from docqueue.commands import submit
    from docqueue.db import session_scope

    before = read_statement_counts(counts)
    with PeakRss(worker.pid) as rss:
        started = time.perf_counter()
        with session_scope() as session:
            document_id = submit(session, owner_id, f"big{run}.pdf", "application/pdf", io.BytesIO(data)).id
        status = wait_for(
            lambda: (
                (s := query("SELECT status FROM documents WHERE id = :d", d=document_id)) in ("completed", "failed")
                and s
            ),
            interval=0.05,
            what="the big document",
            watch=[worker],
        )
        elapsed = time.perf_counter() - started
    if status != "completed":
        raise RuntimeError(
            f"document {document_id} {status}: {query('SELECT error FROM documents WHERE id = :d', d=document_id)}"
        )
    after = read_statement_counts(counts)
    return elapsed, rss, tuple(b - a for a, b in zip(before, after))


def main() -> None:
    pages = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    documents = [big_pdf(pages, seed) for seed in range(runs)]
    bare, durable = [], []
    with scratch_environment("big") as (env, logs), tempfile.TemporaryDirectory() as counts:
        owner_id, _ = make_user("big@bench")
        from docqueue.broker import build_broker

        build_broker()
        counted = {
            **env,
            "BENCH_STATEMENT_COUNTS": counts,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(STATEMENT_COUNTER), env.get("PYTHONPATH")])),
        }
        with booted_worker(env, logs, worker_env=counted) as worker:
            for run, data in enumerate(documents):
                path = Path(counts) / f"big{run}.pdf"
                path.write_bytes(data)
                bare.append(bare_pymupdf(str(path)))
                durable.append(docqueue_run(owner_id, data, worker, counts, run))
                print(f"run {run + 1}: bare {bare[-1][0]:.2f} s, docqueue {durable[-1][0]:.2f} s", flush=True)
        images = query("SELECT count(*) FROM document_images WHERE document_id = (SELECT max(id) FROM documents)")

    base_seconds = statistics.median(s for s, _ in bare)
    print(f"\n{pages} pages, {images} images, {len(documents[0]) / 1e6:.1f} MB; median of {runs} runs")
    print(f"{'':34} {'seconds':>8} {'x bare':>7} {'peak RSS MB':>12} {'statements':>11} {'commits':>8}")
    print(
        f"{'bare PyMuPDF, 1 process':34} {base_seconds:8.2f} {1:7.1f} {statistics.median(r for _, r in bare) / 1e6:12.0f}"
    )
    seconds = statistics.median(s for s, _, _ in durable)
    print(
        f"{'docqueue, Procfile worker (tree)':34} {seconds:8.2f} {seconds / base_seconds:7.1f} "
        f"{statistics.median(r.peak for _, r, _ in durable) / 1e6:12.0f} "
        f"{statistics.median(c[0] for *_, c in durable):11.0f} {statistics.median(c[1] for *_, c in durable):8.0f}"
    )
    print("statements: psycopg statements sent by the worker's processes during the run (heartbeats included)")
    pss = statistics.median(r.peak_pss for _, r, _ in durable)
    print(f"peak PSS of the worker's tree (shared pages counted once): {pss / 1e6:.0f} MB")
    peaks = sorted(durable[-1][1].peaks.values(), reverse=True)
    print("peak RSS MB of each process of the tree, last run: " + ", ".join(f"{peak / 1e6:.0f}" for peak in peaks))


if __name__ == "__main__":
    main()
