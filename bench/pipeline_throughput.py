"""Documents per second through docqueue, against bare PyMuPDF and bare Dramatiq.

The same N documents (the corpus PDFs, cycled) go through:

1. bare PyMuPDF in one process, and in a pool of as many processes as docqueue's PDF pool:
   the PyMuPDF work of docqueue's pipeline (`bench/pdf_work.py`: every page's text, every
   distinct image extracted and hashed);
2. bare Dramatiq: one actor per file that does the same PyMuPDF work (bench/bare_dramatiq_actor.py),
   on as many processes (one thread each) as docqueue's PDF pool;
3. the durable floor: the same work as docqueue's pipeline with OCR off, stored the way a
   careful hand-written worker would on the same Postgres (bench/durable_floor_actor.py: a bare
   Dramatiq actor on as many processes as docqueue's PDF pool, one thread each, that reads the
   file with PyMuPDF and stores the file, its pages, images and chunks in one COPY transaction);
   its tables are then checked against what the files hold;
4. docqueue: stored in Postgres and queued in one transaction, then the Procfile's
   worker (already booted) and clock run every stage for each (inspect, extract_text,
   extract_images, chunk; the AI stages are not configured), with claims, leases,
   fenced writes of every page, image and chunk, and the dispatcher admitting work.
   Users' defaults apply (one user's `concurrent_ocr_jobs`, OCR_CONCURRENT_JOBS in
   flight), twice: with the user's background OCR off, the same work as the
   baselines; and on (the default), where OCR reads the 7 image-only pages of 2 of
   the corpus's 20 files and writes their searchable PDFs, which no baseline does.

For the scaling curve, run it with WORKER_PROCESSES=1, 2, 4 (the Procfile's worker
processes) and OCR_CONCURRENT_JOBS raised to match (4 per process).

Each is timed from the first byte of work to the last document done (docqueue's window
includes storing the uploads' bytes, and the floor's its files'); the median of RUNS runs
is reported with its ratio to bare PyMuPDF (1 process), then docqueue's and bare
Dramatiq's documents/s as a share of the durable floor's.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/0 \\
        python bench/pipeline_throughput.py [N] [RUNS]
"""

from __future__ import annotations

import io
import multiprocessing
import os
import secrets
import shlex
import sys
import tempfile
import time
from pathlib import Path

import redis
import sqlalchemy as sa
from benchkit import print_medians, start, stop, wait_for
from durable_floor import durable_floor, print_floor_shares
from pdf_work import pdf_work  # bench/ is this script's directory: spawned pool processes find it too

from docqueue.local.procfile import REPO_ROOT, procfile_commands
from docqueue.local.scratch import empty_all_tables, migrate, scratch_database
from docqueue.settings import get_settings

CORPUS = REPO_ROOT.parent / "shared" / "corpus" / "pdf"


def bare_pymupdf(paths: list[str], processes: int) -> float:
    if processes == 1:
        began = time.perf_counter()
        for path in paths:
            pdf_work(path)
        return time.perf_counter() - began
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        pool.map(pdf_work, paths[:processes])  # warm: spawn and import PyMuPDF before timing
        began = time.perf_counter()
        pool.map(pdf_work, paths, chunksize=4)
        return time.perf_counter() - began


def bare_dramatiq(paths: list[str], processes: int, workdir: Path) -> float:
    from bench import bare_dramatiq_actor

    done_key = f"{os.environ['BENCH_NAMESPACE']}:done"
    bare_dramatiq_actor.counter.delete(done_key)
    worker = start(
        f"dramatiq bench.bare_dramatiq_actor --processes {processes} --threads 1", {**os.environ}, workdir / "bare.log"
    )
    try:
        time.sleep(4)  # let the worker boot: we time the work, not the start-up
        began = time.perf_counter()
        for path in paths:
            bare_dramatiq_actor.extract_file.send(path)
        wait_for(lambda: int(bare_dramatiq_actor.counter.get(done_key) or 0) >= len(paths))
        return time.perf_counter() - began
    finally:
        stop(worker)


def docqueue_pipeline(files: list[tuple[str, bytes]], workdir: Path, ocr: bool) -> float:
    from docqueue.accounts.users import create_user
    from docqueue.broker import build_broker
    from docqueue.commands import queue_upload
    from docqueue.db import get_engine, session_scope
    from docqueue.dispatch.dispatcher import process_document_queue

    engine = get_engine()
    empty_all_tables(engine)
    with session_scope() as session:
        # The whole batch is one user's, with a new user's defaults: a lone user may use all the capacity.
        owner, _ = create_user(session, f"bench{secrets.token_hex(3)}@example.com")
        owner.enable_background_ocr = ocr
        owner_id = owner.id
    build_broker()
    commands = procfile_commands()
    worker = start(commands["worker"], {**os.environ}, workdir / "worker.log")
    clock = start(commands["clock"], {**os.environ}, workdir / "clock.log")
    try:
        time.sleep(6)  # boot the worker and its PDF pool before the clock starts
        began = time.perf_counter()
        with session_scope() as session:
            for name, data in files:
                queue_upload(session, owner_id, name, "application/pdf", io.BytesIO(data))
        with session_scope() as session:
            process_document_queue(session)

        def all_done() -> bool:
            with engine.connect() as connection:
                return not connection.execute(
                    sa.text("SELECT 1 FROM documents WHERE status NOT IN ('completed', 'failed') LIMIT 1")
                ).first()

        wait_for(all_done)
        elapsed = time.perf_counter() - began
        with engine.connect() as connection:
            failed = connection.execute(sa.text("SELECT count(*) FROM documents WHERE status = 'failed'")).scalar()
        if failed:
            raise RuntimeError(f"{failed} documents failed during the benchmark")
        return elapsed
    finally:
        stop(worker)
        stop(clock)


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    corpus = sorted(CORPUS.glob("*.pdf"))
    chosen = [corpus[i % len(corpus)] for i in range(count)]
    files = [(path.name, path.read_bytes()) for path in chosen]
    paths = [str(path) for path in chosen]
    namespace = f"bench-{secrets.token_hex(4)}"
    with (
        scratch_database(os.environ["DATABASE_URL"], "docqueue_bench") as database_url,
        tempfile.TemporaryDirectory() as tmp,
    ):
        os.environ.update(
            {
                "DATABASE_URL": database_url,
                "SECRET_KEY": "bench",
                "REDIS_NAMESPACE": f"{namespace}-docqueue",
                "BENCH_NAMESPACE": f"{namespace}-bare",
            }
        )
        get_settings.cache_clear()
        migrate({**os.environ})
        pool_size = get_settings().pdf_worker_processes
        results: dict[str, list[float]] = {}
        for _ in range(runs):
            results.setdefault("bare PyMuPDF, 1 process", []).append(bare_pymupdf(paths, 1))
            results.setdefault(f"bare PyMuPDF, {pool_size} processes", []).append(bare_pymupdf(paths, pool_size))
            results.setdefault(f"bare Dramatiq, {pool_size} processes", []).append(
                bare_dramatiq(paths, pool_size, Path(tmp))
            )
            elapsed, floor_check = durable_floor(paths, pool_size, Path(tmp))
            results.setdefault(f"the durable floor, {pool_size} processes", []).append(elapsed)
            results.setdefault("docqueue, OCR off (same work)", []).append(docqueue_pipeline(files, Path(tmp), False))
            results.setdefault("docqueue, OCR on (default)", []).append(docqueue_pipeline(files, Path(tmp), True))
        client = redis.Redis.from_url(os.environ["REDIS_URL"])
        keys = list(client.scan_iter(match=f"{namespace}*"))
        if keys:
            client.delete(*keys)
        from docqueue.db import get_engine

        get_engine().dispose()

    print(f"{count} documents ({sum(len(d) for _, d in files) / 1e6:.1f} MB, corpus cycled); median of {runs} runs")
    print_medians(results, "bare PyMuPDF, 1 process", count, "docs", title="pipeline")
    print()
    floor, bare = f"the durable floor, {pool_size} processes", f"bare Dramatiq, {pool_size} processes"
    rows = ["docqueue, OCR off (same work)", "docqueue, OCR on (default)", floor]
    print_floor_shares({**{row: results[row] for row in rows}, f"{bare}, stores nothing": results[bare]}, floor, count)
    print(floor_check)
    print(
        "settings:",
        shlex.join(
            f"{k}={os.environ.get(k, '(default)')}"
            for k in ("OCR_CONCURRENT_JOBS", "JOBS_PER_MESSAGE", "PDF_WORKER_PROCESSES")
        ),
    )


if __name__ == "__main__":
    sys.path.insert(0, str(REPO_ROOT))  # for `bench.bare_dramatiq_actor`
    main()
