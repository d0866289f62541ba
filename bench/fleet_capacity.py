"""The fleet's two figures: the single dispatcher's admissions per second, and Redis memory at 100,000 waiting.

Fills a scratch database with WAITING pending jobs (1,000 users, a tenth of
them importing in the bulk lane), builds the broker against a private
redis-server of its own (so `INFO memory` counts only this bench), then:

- Redis memory: `used_memory` with nothing queued, after the dispatcher
  admits OCR_CONCURRENT_JOBS of the backlog (4, then 1,000), and, for
  comparison, after enqueueing one message per waiting job straight into
  Redis (what a queue that kept its backlog in Redis would hold).
- Admissions per second: the dispatcher's run as a nudge makes it
  (`process_document_queue(maintenance=False)`: lock, admission statement,
  commit, one Redis message per admitted job) and as the clock's tick
  (`maintenance=True`: recovery and re-send checks too), timed after every
  slot has been freed (untimed: the queued jobs are cancelled), with 1, 10
  and 100 slots to fill per run. One slot per run is the worst case: each
  completion nudging its own run.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres python bench/fleet_capacity.py [WAITING]
"""

from __future__ import annotations

import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import redis
import sqlalchemy as sa
from benchkit import scratch_environment, wait_for
from dramatiq.brokers.redis import RedisBroker
from queue_at_scale import FILL

from docqueue.settings import get_settings


def private_redis(directory: str) -> tuple[subprocess.Popen, str]:
    """A redis-server of the bench's own on a free port, no persistence: its memory is the bench's alone."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [shutil.which("redis-server") or "/usr/bin/redis-server", "--port", str(port), "--bind", "127.0.0.1"]
        + ["--save", "", "--appendonly", "no", "--dir", directory],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)

    def answers() -> bool:
        try:
            return bool(client.ping())
        except redis.ConnectionError:
            return False

    wait_for(answers, timeout=20, what="the private redis-server")
    return server, url


def used_memory(client: redis.Redis) -> int:
    """The server's `INFO memory` used_memory, in bytes."""
    return int(client.info("memory")["used_memory"])


def set_capacity(slots: int) -> None:
    """Make OCR_CONCURRENT_JOBS `slots` for the dispatcher runs that follow."""
    os.environ["OCR_CONCURRENT_JOBS"] = str(slots)
    get_settings.cache_clear()


def dispatch_once(maintenance: bool) -> tuple[int, float]:
    """One dispatcher run as the nudge or the clock makes it: (jobs admitted, seconds)."""
    from docqueue.db import session_scope
    from docqueue.dispatch.dispatcher import process_document_queue

    with session_scope() as session:
        started = time.perf_counter()
        report = process_document_queue(session, maintenance=maintenance)
        return report.admitted, time.perf_counter() - started


def free_every_slot() -> None:
    """Cancel every queued job (untimed): the next run has every slot to fill again."""
    from docqueue.db import session_scope
    from docqueue.queue.operator import OperatorActions

    with session_scope() as session:
        queued = session.execute(sa.text("SELECT id FROM document_queue WHERE status = 'queued'")).scalars().all()
        OperatorActions(session, None).cancel(queued)
        session.commit()


def admissions_per_second(slots: int, runs: int, maintenance: bool) -> tuple[float, float]:
    """(admissions per second, milliseconds per run) over `runs` runs with `slots` free each time."""
    set_capacity(slots)
    admitted, seconds = 0, 0.0
    for _ in range(runs):
        free_every_slot()
        count, took = dispatch_once(maintenance)
        admitted, seconds = admitted + count, seconds + took
    return admitted / seconds, 1000 * seconds / runs


def backlog_in_redis_bytes(url: str, waiting: int) -> int:
    """used_memory growth from one stage message per waiting job enqueued straight into Redis (then deleted)."""
    import dramatiq

    from docqueue.pipeline import PIPELINE

    client = redis.Redis.from_url(url)
    broker = RedisBroker(url=url, namespace="bench-backlog-in-redis")
    before = used_memory(client)
    stage = PIPELINE[0]
    broker.declare_queue(stage.queue_name)
    for job_id in range(waiting):
        broker.enqueue(
            dramatiq.Message(
                queue_name=stage.queue_name, actor_name=stage.actor_name, args=(job_id,), kwargs={}, options={}
            )
        )
    grown = used_memory(client) - before
    for key in client.scan_iter(match="bench-backlog-in-redis*"):
        client.delete(key)
    return grown


def machine() -> str:
    """The CPUs, the kernel and the load average: the figures depend on all three."""
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    return f"{os.cpu_count()} CPUs ({cpu}), {platform.system()} {platform.release()}, load average {load}"


def main() -> None:
    waiting = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    with tempfile.TemporaryDirectory(prefix="docqueue-bench-redis-") as directory:
        server, url = private_redis(directory)
        os.environ["REDIS_URL"] = url
        try:
            with scratch_environment("fleet", REDIS_URL=url):
                run(url, waiting)
        finally:
            server.terminate()
            server.wait(timeout=10)


def run(url: str, waiting: int) -> None:
    """Fill, measure and print, inside the scratch environment."""
    from docqueue.broker import build_broker
    from docqueue.db import get_engine

    engine = get_engine()
    started = time.perf_counter()
    with engine.begin() as connection:
        for statement in FILL.split(";\n"):
            if statement.strip():
                connection.execute(sa.text(statement), {"rows": waiting, "completed": 0})
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(sa.text("VACUUM ANALYZE"))
        postgres = connection.execute(sa.text("SHOW server_version")).scalar()
    print(f"filled {waiting:,} waiting jobs in {time.perf_counter() - started:.1f} s")

    client = redis.Redis.from_url(url)
    build_broker()
    empty = used_memory(client)
    memory = {}
    for slots in (4, 1000):
        set_capacity(slots)
        dispatch_once(maintenance=False)
        memory[slots] = used_memory(client) - empty
    in_redis = backlog_in_redis_bytes(url, waiting)

    rates = {
        "nudge, 1 slot free per run": admissions_per_second(1, 300, maintenance=False),
        "nudge, 10 slots free per run": admissions_per_second(10, 100, maintenance=False),
        "nudge, 100 slots free per run": admissions_per_second(100, 30, maintenance=False),
        "clock tick, 1 slot free per run": admissions_per_second(1, 100, maintenance=True),
        "clock tick, 100 slots free per run": admissions_per_second(100, 30, maintenance=True),
    }
    left = engine.connect().execute(sa.text("SELECT count(*) FROM document_queue WHERE status = 'pending'")).scalar()

    print(f"machine: {machine()}; Postgres {postgres}; Redis {client.info('server')['redis_version']}")
    print(f"Redis used_memory over an empty server, {waiting:,} jobs waiting in Postgres:")
    for slots, grown in memory.items():
        print(f"  {slots:>5} in flight (OCR_CONCURRENT_JOBS={slots}): {grown / 1024:8.1f} KiB")
    per_message = (memory[1000] - memory[4]) / 996
    print(f"  so about {per_message:.0f} bytes per message in flight, over a fixed {memory[4] / 1024:.0f} KiB")
    print(
        f"  the backlog as Redis messages instead: {in_redis / 1024 / 1024:8.1f} MiB ({in_redis / waiting:.0f} B each)"
    )
    print(f"dispatcher admissions per second ({left:,} still pending at the end):")
    for name, (rate, ms) in rates.items():
        print(f"  {name:36} {rate:8.0f} /s  {ms:7.1f} ms per run")


if __name__ == "__main__":
    main()
