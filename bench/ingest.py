"""Bulk ingest against a plain walk-and-sha256, and how soon an upload starts behind the import.

Creates FILES distinct small PDFs in a temporary directory, then in one run:

1. baseline: `os.walk` and `hashlib.sha256` of every file (read whole), RUNS times;
2. `ingest_paths` (what `docqueue ingest` runs) of the same tree into a
   scratch database, RUNS times, each for a new user so each run adds every
   file (walk, sniff, hash, dedupe lookup, bulk insert of documents, bytes and
   queue rows, run record);
3. with that backlog waiting in the bulk lane, the Procfile's worker, clock
   and web are started; once the worker has finished WARM_UP imported
   documents, UPLOADS interactive uploads are sent over HTTP one after
   another; for each, the time from the upload's answer to its job's first
   claim (`started_at`).

Medians throughout. Prints a table.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/0 \\
        python bench/ingest.py [FILES] [RUNS] [UPLOADS]
"""

from __future__ import annotations

import hashlib
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests
import sqlalchemy as sa
from benchkit import free_port, start, stop

from docqueue.local.scratch import migrate, scratch_database
from docqueue.settings import get_settings

# A one-page PDF; each file appends its own comment line so every file has its own hash.
PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
    b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 200]>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
)


#: Imported documents finished before the first upload is timed.
WARM_UP = 20


def make_tree(root: Path, count: int) -> int:
    """`count` distinct small PDFs, 1,000 a folder; their total size."""
    total = 0
    for n in range(count):
        folder = root / f"batch{n // 1000:04d}"
        if n % 1000 == 0:
            folder.mkdir(parents=True)
        data = PDF + f"% file {n}\n".encode()
        (folder / f"doc{n:07d}.pdf").write_bytes(data)
        total += len(data)
    return total


def walk_and_hash(root: Path) -> int:
    """The baseline: every file under `root` read whole and hashed, one after another."""
    count = 0
    for directory, _, names in os.walk(root):
        for name in names:
            with open(os.path.join(directory, name), "rb") as handle:
                hashlib.sha256(handle.read()).hexdigest()
            count += 1
    return count


def upload_latencies(engine, env: dict, token: str, uploads: int, log_dir: Path) -> list[float]:
    """Seconds from each upload's 202 to its first claim, with the backlog waiting and real processes running."""
    port = free_port()
    processes = [
        start("worker", env, log_dir / "worker.log"),
        start("clock", env, log_dir / "clock.log"),
        start("web", {**env, "PORT": str(port)}, log_dir / "web.log"),
    ]
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if requests.get(f"{base_url}/healthz", timeout=5).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("web did not start")
            time.sleep(0.5)
        # Let the worker boot and warm up on the import (WARM_UP documents done), so uploads meet a
        # busy system in its steady state rather than its start.
        with engine.connect() as connection:
            while (
                connection.execute(sa.text("SELECT count(*) FROM document_queue WHERE status = 'completed'")).scalar()
                < WARM_UP
            ):
                connection.rollback()
                time.sleep(0.2)
        samples = []
        for n in range(uploads):
            response = requests.post(
                f"{base_url}/api/documents",
                headers={"Authorization": f"Bearer {token}"},
                files={"file": (f"upload{n}.pdf", PDF + f"% upload {n} {secrets.token_hex(4)}\n".encode())},
                timeout=30,
            )
            answered = time.time()
            response.raise_for_status()
            document_id = response.json()["id"]
            with engine.connect() as connection:
                while True:
                    started = connection.execute(
                        sa.text("SELECT extract(epoch FROM started_at) FROM document_queue WHERE document_id = :d"),
                        {"d": document_id},
                    ).scalar()
                    connection.rollback()
                    if started is not None:
                        break
                    time.sleep(0.01)
            samples.append(max(float(started) - answered, 0.0))
            time.sleep(0.5)
        return samples
    finally:
        for process in processes:
            stop(process)


def main() -> None:
    files = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    uploads = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    server_url = os.environ["DATABASE_URL"]
    with (
        tempfile.TemporaryDirectory(prefix="docqueue-bench-ingest-") as temp,
        scratch_database(server_url, "docqueue_bench") as database_url,
    ):
        temp = Path(temp)
        started = time.perf_counter()
        total_bytes = make_tree(temp / "tree", files)
        print(f"made {files:,} files ({total_bytes:,} bytes) in {time.perf_counter() - started:.1f} s", flush=True)
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "SECRET_KEY": "bench",
            "REDIS_NAMESPACE": f"bench-ingest-{secrets.token_hex(4)}",
        }
        migrate(env)
        os.environ.update(env)
        get_settings.cache_clear()
        from docqueue.accounts.users import create_user
        from docqueue.broker import build_broker
        from docqueue.db import get_engine, session_scope
        from docqueue.ingest import IngestOptions, ingest_paths

        build_broker()
        walk_seconds = []
        for _ in range(runs):
            started = time.perf_counter()
            assert walk_and_hash(temp / "tree") == files
            walk_seconds.append(time.perf_counter() - started)
        ingest_seconds = []
        token = ""
        for run in range(runs):
            with session_scope() as session:
                user, token = create_user(session, f"importer{run}@bench")
                owner = user.id
            with session_scope() as session:
                started = time.perf_counter()
                report = ingest_paths(session, owner, [str(temp / "tree")], IngestOptions.from_settings())
                ingest_seconds.append(time.perf_counter() - started)
            assert report.progress.added == files, report.progress
            print(f"ingest run {run + 1}: {ingest_seconds[-1]:.1f} s", flush=True)
        # Only the last importer's backlog should wait: the others are history.
        engine = get_engine()
        with engine.begin() as connection:
            connection.execute(
                sa.text("DELETE FROM documents WHERE owner_id <> (SELECT id FROM users WHERE email = :e)"),
                {"e": f"importer{runs - 1}@bench"},
            )
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(sa.text("VACUUM ANALYZE"))
        latencies = upload_latencies(engine, env, token, uploads, temp) if uploads else []
        with engine.connect() as connection:
            waiting = connection.execute(
                sa.text("SELECT count(*) FROM document_queue WHERE lane = 'bulk' AND status = 'pending'")
            ).scalar()
        engine.dispose()

    walk_rate = files / statistics.median(walk_seconds)
    ingest_rate = files / statistics.median(ingest_seconds)
    print(f"\n{files:,} files, {total_bytes:,} bytes; median of {runs} runs")
    print(f"{'':40} {'seconds':>8} {'files/s':>9} {'MB/s':>7} {'x baseline':>11}")
    for name, seconds in (("walk + sha256 (baseline)", walk_seconds), ("docqueue ingest", ingest_seconds)):
        median = statistics.median(seconds)
        print(
            f"{name:40} {median:8.2f} {files / median:9,.0f} {total_bytes / median / 1e6:7.2f} "
            f"{files / median / walk_rate:11.2f}"
        )
    if latencies:
        print(
            f"\nupload -> first claim behind the import ({uploads} uploads, {waiting:,} imports still waiting after): "
            f"median {statistics.median(latencies):.2f} s, max {max(latencies):.2f} s"
        )
        print("each: " + ", ".join(f"{seconds:.2f} s" for seconds in latencies))
    print(f"ingest/baseline ratio: {ingest_rate / walk_rate:.2f}")


if __name__ == "__main__":
    main()
