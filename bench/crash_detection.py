"""How soon a job held by a SIGKILLed worker is taken back and claimed by another worker.

Two Procfile `worker` processes and the `clock` run on a scratch database
with short heartbeats: HEARTBEAT_INTERVAL_SECONDS=INTERVAL,
HEARTBEAT_TIMEOUT_SECONDS=2 × INTERVAL (the setting's minimum is 2) and
DISPATCH_INTERVAL_SECONDS=DISPATCH. Each run uploads a scanned PDF of
PAGES image-only pages (OCR takes several seconds), waits until its `ocr`
stage is running plus a random part of a heartbeat interval (so kills
land at every phase of the beat), finds the worker holding the claim from
`document_queue.worker_id` (host:pid:...), and SIGKILLs that worker's whole
process group (the dramatiq master, its worker process and PDF processes;
Tesseract dies with its PDF process) as tests/system/test_chaos.py does. Then the
job row is polled every 20 ms: "taken back" is when the clock's recovery
makes it pending again, "claimed" when the other worker holds it (a new
`worker_id`). The killed worker is restarted and the document must complete.

The bound printed beside: the lease lapses at most HEARTBEAT_TIMEOUT after
the kill (the last beat came before it), the clock's next tick is at most
DISPATCH later, and recovery and admission run in that same tick; so
HEARTBEAT_TIMEOUT + DISPATCH = 2 × INTERVAL + DISPATCH, plus the message's
trip to the idle worker (its poll is 100 ms).

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/0 \\
        python bench/crash_detection.py [RUNS] [INTERVAL] [DISPATCH] [PAGES]
"""

from __future__ import annotations

import io
import os
import random
import signal
import statistics
import subprocess
import sys
import time

import psutil
from benchkit import make_user, query, running, scanned_pdf, scratch_environment, start, stop, wait_for

from docqueue.db import get_engine


def owner_of(worker_id: str | None, workers: list[subprocess.Popen]) -> subprocess.Popen | None:
    """Which of `workers` (Procfile worker groups) runs the process a `worker_id` names."""
    if not worker_id:
        return None
    pid = int(worker_id.split(":")[1])
    for worker in workers:
        try:
            if pid in {child.pid for child in psutil.Process(worker.pid).children(recursive=True)}:
                return worker
        except psutil.NoSuchProcess:
            pass
    return None


def has_beaten(worker: subprocess.Popen, workers: list[subprocess.Popen]) -> bool:
    """Whether this worker group's worker process has sent a heartbeat: it has booted."""
    with get_engine().connect() as connection:
        ids = connection.exec_driver_sql("SELECT worker_id FROM worker_heartbeats").scalars().all()
    return any(owner_of(worker_id, workers) is worker for worker_id in ids)


def job_state(job_id: int):
    with get_engine().connect() as connection:
        return connection.exec_driver_sql(
            "SELECT status, stage, worker_id, attempts FROM document_queue WHERE id = %(id)s", {"id": job_id}
        ).one()


def one_run(run: int, scan: bytes, owner_id: int, interval: float, workers: list, env: dict, logs) -> tuple:
    """Upload `scan`, kill the claim's worker mid-OCR, time the takeover; (taken back s, claimed s, survivors).

    Replaces the killed worker in `workers` with a new one, booted, and waits for the document to complete.
    """
    from docqueue.commands import submit
    from docqueue.db import session_scope

    with session_scope() as session:
        document = submit(session, owner_id, f"scan{run}.pdf", "application/pdf", io.BytesIO(scan))
    job_id = query("SELECT id FROM document_queue WHERE document_id = :d", d=document.id)
    wait_for(lambda: job_state(job_id)[:2] == ("processing", "ocr"), timeout=300, what="the ocr stage to start")
    time.sleep(0.3 + random.uniform(0, interval))
    state = job_state(job_id)
    victim = owner_of(state.worker_id, workers)
    if (state.status, state.stage) != ("processing", "ocr") or victim is None:
        raise RuntimeError(f"the ocr stage ended before the kill ({state}): use more PAGES")
    # Every process of the group, to check afterwards that none outlived the kill.
    family = psutil.Process(victim.pid).children(recursive=True)
    os.killpg(victim.pid, signal.SIGKILL)
    killed = time.perf_counter()
    victim.wait()
    taken_back = None
    while True:
        now = job_state(job_id)
        if taken_back is None and now.status in ("pending", "queued"):
            taken_back = time.perf_counter() - killed
        if now.status == "processing" and now.worker_id != state.worker_id:
            claimed = time.perf_counter() - killed
            break
        if time.perf_counter() - killed > 120:
            raise TimeoutError(f"job {job_id} was not claimed again within 120 s: {now}")
        time.sleep(0.02)
    survivors = sum(process.is_running() and process.status() != psutil.STATUS_ZOMBIE for process in family)
    # Two workers again for the next run; this document must still complete.
    workers[workers.index(victim)] = replacement = start("worker", env, logs / f"worker-{run}.log")
    wait_for(lambda: has_beaten(replacement, workers), timeout=180, interval=0.2, what="the restarted worker")
    wait_for(
        lambda: query("SELECT status FROM documents WHERE id = :d", d=document.id) in ("completed", "failed"),
        timeout=600,
        interval=0.2,
        what="the document to finish",
    )
    if query("SELECT status FROM documents WHERE id = :d", d=document.id) != "completed":
        raise RuntimeError(f"document {document.id} failed after the kill")
    return taken_back or claimed, claimed, survivors


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    interval = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    dispatch = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    pages = int(sys.argv[4]) if len(sys.argv) > 4 else 6
    timeout = 2 * interval
    settings = {
        "HEARTBEAT_INTERVAL_SECONDS": str(interval),
        "HEARTBEAT_TIMEOUT_SECONDS": str(timeout),
        "DISPATCH_INTERVAL_SECONDS": str(dispatch),
        "MAX_ATTEMPTS": "10",
    }
    # Two texts, alternated: consecutive documents are not the same file.
    scans = [scanned_pdf(pages, seed=seed) for seed in (0, 1)]
    results = []
    with scratch_environment("crash", **settings) as (env, logs):
        from docqueue.broker import build_broker

        build_broker()
        owner_id, _ = make_user("crash@bench")
        workers = [start("worker", env, logs / "worker-a.log"), start("worker", env, logs / "worker-b.log")]
        clock = start("clock", env, logs / "clock.log")
        with running(clock, logs=logs):
            try:
                for worker in workers:
                    wait_for(lambda: has_beaten(worker, workers), timeout=180, interval=0.2, what="a worker to boot")
                for run in range(runs):
                    results.append(one_run(run, scans[run % 2], owner_id, interval, workers, env, logs))
                    print(
                        f"run {run + 1}: taken back {results[-1][0]:.2f} s, claimed {results[-1][1]:.2f} s", flush=True
                    )
            finally:
                for worker in workers:
                    stop(worker)
    back, claimed, survivors = zip(*results)
    bound = timeout + dispatch
    print(
        f"\n{runs} SIGKILLs mid-OCR ({pages}-page scans); heartbeat every {interval} s, timeout {timeout} s, "
        f"clock tick {dispatch} s"
    )
    print(f"{'kill ->':26} {'median s':>9} {'max s':>7} {'bound s':>8} {'max / bound':>12}")
    for name, samples in (("taken back (queued again)", back), ("claimed by the other", claimed)):
        print(
            f"{name:26} {statistics.median(samples):9.2f} {max(samples):7.2f} {bound:8.2f} {max(samples) / bound:12.2f}"
        )
    print(
        f"bound = 2 x heartbeat interval + dispatch interval; processes of a killed group left running: {sum(survivors)}"
    )


if __name__ == "__main__":
    main()
