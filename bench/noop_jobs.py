"""Durable no-op jobs through docqueue's queue, against bare Dramatiq no-op messages.

What each job costs when the work itself costs nothing: the queue's own
bookkeeping. Both sides run the Procfile's worker command line (its
processes, threads and poll interval) with another module, in one run:

1. baseline, bare Dramatiq: `bench/bare_noop_actor.py` on its own broker and
   namespace; N messages sent, timed until its Redis counter reaches N;
2. docqueue: N documents stored beforehand (a tiny PDF each, untimed); then
   timed from the first `DocumentQueueService.enqueue` to the last job
   `completed`: the N pending rows inserted and committed in one
   transaction, a dispatcher run (`process_document_queue`) admitting them
   by the fairness rule while at most OCR_CONCURRENT_JOBS are in flight,
   Redis messages to `bench/noop_actor.py`, which claims each job, completes
   it under its lease (see that module for exactly what it runs), and nudges
   the dispatcher to admit the next; the Procfile's `clock` runs throughout.

Both workers are booted before timing. Median of RUNS runs; prints jobs/s
and each side's ratio to the baseline's time.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/0 \\
        python bench/noop_jobs.py [N] [RUNS]
"""

from __future__ import annotations

import io
import re
import sys
import time

from benchkit import make_user, print_medians, query, running, scratch_environment, start, wait_for, worker_booted

from docqueue.local.procfile import procfile_commands
from docqueue.pipeline import STAGE_NAMES
from docqueue.settings import get_settings

# A one-page PDF; each job's document gets its own trailing comment, so each has its own bytes.
TINY_PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
    b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 200]>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
)


def store_document(owner_id: int, name: str, data: bytes) -> int:
    """Store a document's row and bytes without queueing it; its id."""
    from docqueue.db import session_scope
    from docqueue.documents import create_document

    with session_scope() as session:
        return create_document(session, owner_id, name, "application/pdf", io.BytesIO(data)).id


def worker_command(module: str) -> str:
    """The Procfile's worker command line with `module` in place of `actors`: same processes, threads, poll."""
    return re.sub(r"(?<= )actors(?= )", module, procfile_commands()["worker"])


def bare_dramatiq(count: int, runs: int, env: dict, logs) -> list[float]:
    """Seconds for `count` no-op messages through bare Dramatiq, `runs` times."""
    import bare_noop_actor as bare  # reads BENCH_NAMESPACE: import only once it is set

    worker = start(worker_command("bench.bare_noop_actor"), env, logs / "bare.log")
    samples = []
    with running(worker, logs=logs):
        bare.counter.delete(bare.DONE_KEY)
        bare.noop.send(0)  # warm: the worker has booted once it has counted this one
        wait_for(lambda: bare.counter.get(bare.DONE_KEY), timeout=120, what="the bare worker to boot", watch=[worker])
        for _ in range(runs):
            bare.counter.delete(bare.DONE_KEY)
            started = time.perf_counter()
            for n in range(count):
                bare.noop.send(n)
            wait_for(lambda: int(bare.counter.get(bare.DONE_KEY) or 0) >= count, what="the bare messages")
            samples.append(time.perf_counter() - started)
    return samples


def durable(count: int, runs: int, env: dict, logs) -> list[float]:
    """Seconds for `count` no-op jobs through docqueue's queue, `runs` times (documents stored untimed)."""
    from docqueue.broker import build_broker
    from docqueue.db import session_scope
    from docqueue.dispatch.dispatcher import process_document_queue
    from docqueue.queue import DocumentQueueService

    build_broker()
    # One user's jobs: let the global capacity (OCR_CONCURRENT_JOBS) be the only limit, as in pipeline_throughput.
    owner_id, _ = make_user("noop@bench", concurrent_ocr_jobs=get_settings().ocr_concurrent_jobs)
    booted_since = time.time()
    worker = start(worker_command("bench.noop_actor"), env, logs / "worker.log")
    clock = start("clock", env, logs / "clock.log")
    samples = []
    with running(worker, clock, logs=logs):
        wait_for(
            lambda: worker_booted(booted_since), timeout=120, interval=0.2, what="the first heartbeat", watch=[worker]
        )
        for run in range(runs):
            ids = [
                store_document(owner_id, f"noop{run}-{n}.pdf", TINY_PDF + b"%% %d %d\n" % (run, n))
                for n in range(count)
            ]
            started = time.perf_counter()
            with session_scope() as session:
                queue = DocumentQueueService(session)
                for document_id in ids:
                    queue.enqueue(document_id, STAGE_NAMES)
            with session_scope() as session:
                process_document_queue(session)
            wait_for(
                lambda: (
                    query(
                        "SELECT count(*) FROM document_queue WHERE status = 'completed' AND document_id = ANY(:ids)",
                        ids=ids,
                    )
                    >= count
                ),
                what="the durable jobs",
            )
            samples.append(time.perf_counter() - started)
            failed = query("SELECT count(*) FROM document_queue WHERE status <> 'completed'")
            if failed:
                raise RuntimeError(f"{failed} jobs did not complete")
    return samples


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    with scratch_environment("noop") as (env, logs):
        results = {
            "bare Dramatiq no-op (baseline)": bare_dramatiq(count, runs, env, logs),
            "docqueue durable no-op job": durable(count, runs, env, logs),
        }
    print(f"\n{count} jobs; median of {runs} runs; worker: {worker_command('<module>')}")
    print_medians(results, "bare Dramatiq no-op (baseline)", count, "jobs")
    print(
        "settings:",
        " ".join(
            f"{k}={env.get(k, '(default)')}"
            for k in ("OCR_CONCURRENT_JOBS", "JOBS_PER_MESSAGE", "WORKER_PROCESSES", "WORKER_THREADS")
        ),
    )


if __name__ == "__main__":
    main()
