"""CPU a corpus document costs each process of docqueue: where figure 2's time goes.

N corpus documents (cycled) are stored and queued for a user with
background OCR off (the baselines' work), and the Procfile's worker
(already booted, with its clock) runs every stage. Each process's CPU
time (user + system, from /proc through psutil) is read before the uploads
and after the last document is done: the worker's processes (the dramatiq
master, the worker process, its PDF processes; not the clock, ~2 ms a
document), every Postgres process (backends that started during the run
count whole), and this process, which stores and queues the uploads.
Printed as milliseconds a document.
Not a throughput figure: the run is one, and its rate is printed only to
show what the CPU was spent on.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/0 \\
        python bench/cpu_per_document.py [N]
"""

from __future__ import annotations

import io
import sys
import time

import psutil
from benchkit import booted_worker, make_user, query, scratch_environment, wait_for
from pipeline_throughput import CORPUS


def cpu_seconds(process: psutil.Process) -> float:
    """User and system CPU seconds `process` has used; 0 for one that has gone."""
    try:
        times = process.cpu_times()
    except psutil.Error:
        return 0.0
    return times.user + times.system


def label(process: psutil.Process, master: psutil.Process) -> str:
    """What a process of the worker's tree is."""
    if process.pid == master.pid:
        return "dramatiq master"
    command = " ".join(process.cmdline())
    if "resource_tracker" in command:
        return "multiprocessing's resource tracker"
    return f"PDF process {process.pid}" if "spawn_main" in command else f"dramatiq worker process {process.pid}"


def postgres_processes() -> list[psutil.Process]:
    return [p for p in psutil.process_iter(["name"]) if p.info["name"] and p.info["name"].startswith("postgres")]


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    corpus = sorted(CORPUS.glob("*.pdf"))
    files = [(path.name, path.read_bytes()) for path in (corpus[i % len(corpus)] for i in range(count))]
    with scratch_environment("cpu") as (env, logs):
        owner_id, _ = make_user("cpu@bench", enable_background_ocr=False)
        from docqueue.broker import build_broker
        from docqueue.commands import queue_upload
        from docqueue.db import session_scope
        from docqueue.dispatch.dispatcher import process_document_queue

        build_broker()
        with booted_worker(env, logs) as worker:
            master = psutil.Process(worker.pid)
            tree = [master, *master.children(recursive=True)]
            before = {process.pid: cpu_seconds(process) for process in tree + postgres_processes()}
            began, own = time.perf_counter(), time.process_time()
            with session_scope() as session:
                for name, data in files:
                    queue_upload(session, owner_id, name, "application/pdf", io.BytesIO(data))
            with session_scope() as session:
                process_document_queue(session)
            own = time.process_time() - own
            wait_for(
                lambda: not query("SELECT count(*) FROM documents WHERE status NOT IN ('completed', 'failed')"),
                interval=0.1,
                timeout=900,
                what="every document to finish",
                watch=[worker],
            )
            elapsed = time.perf_counter() - began
            rows = [
                (label(process, master), cpu_seconds(process) - before[process.pid])
                for process in tree
                if process.is_running()
            ]
            postgres = sum(cpu_seconds(p) - before.get(p.pid, 0.0) for p in postgres_processes())

    print(f"{count} corpus documents, background OCR off, in {elapsed:.1f} s ({count / elapsed:.1f} a second)")
    print(f"{'process':40} {'CPU ms a document':>18}")
    for name, seconds in rows + [("Postgres (every process)", postgres), ("this process (storing the uploads)", own)]:
        print(f"{name:40} {seconds / count * 1000:18.1f}")
    total = sum(seconds for _, seconds in rows) + postgres + own
    print(f"{'all of them':40} {total / count * 1000:18.1f}")


if __name__ == "__main__":
    main()
