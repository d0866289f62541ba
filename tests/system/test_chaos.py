"""The chaos suite: real worker, clock and web processes, real Redis and Postgres, broken on purpose.

Each scenario uploads N documents (two of them long multi-page ones, so
faults land mid-stage), breaks something, and asserts that every document
ends completed exactly once, with the pages, chunks and images a clean run
stores (`chaos_clean_run.py`), and nothing left stuck; each prints how long
recovery took. CI runs N=12 and the short variants (SIGKILL 5 s after
SIGTERM); `python bench/chaos.py N` runs a larger N and the long variants
(SIGKILL 30 s after SIGTERM, as a PaaS does). Here the worker is killed,
stopped or frozen, or its queued messages flushed; `test_chaos_outages.py`
takes Redis, Postgres and the web process away.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import time

import pytest
import sqlalchemy as sa

from docqueue.queue.run_outputs import ResultsRun, results_run
from tests.support.chaos import (
    LONG_VARIANTS,
    SIGKILL_GRACE_SECONDS,
    assert_processed_once,
    chaos_documents,
    in_flight_job,
    start,
    submit_all,
    wait_all_finished,
)
from tests.support.processes import wait_until


@pytest.fixture
def owner(make_user):
    return make_user(concurrent_ocr_jobs=6)[0]


def worker_children(worker) -> list[int]:
    result = subprocess.run(["pgrep", "-P", str(worker.process.pid)], check=False, capture_output=True, text=True)
    return [int(pid) for pid in result.stdout.split()]


def paas_sigterm(worker) -> None:
    """What a PaaS does on deploy: SIGTERM to every process of the group, the master forwarding one more."""
    children = worker_children(worker)
    worker.signal_group(signal.SIGTERM)
    time.sleep(0.5)
    for pid in children:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass


def test_sigkill_of_the_worker_group_at_random_points_repeated(procfile, engine, owner, broker):
    rng = random.Random(os.environ.get("CHAOS_SEED", "docqueue"))
    worker = start(procfile, "worker")
    start(procfile, "clock")
    uploaded = submit_all(owner, chaos_documents())
    for _ in range(4 if LONG_VARIANTS else 2):
        wait_until(lambda: in_flight_job(engine), timeout=120, message="a stage to be running")
        time.sleep(rng.uniform(0, 1.5))
        worker.kill()
        killed_at = time.monotonic()
        worker = start(procfile, "worker")
    wait_all_finished(engine, uploaded, killed_at, "SIGKILL at random points, repeated")
    assert_processed_once(engine, uploaded)


def test_sigterm_during_a_long_stage_hands_the_item_back(procfile, engine, owner, broker):
    worker = start(procfile, "worker")
    start(procfile, "clock")
    uploaded = submit_all(owner, chaos_documents())
    job_id, _ = wait_until(
        lambda: in_flight_job(engine, "extract_text", long_only=True),
        timeout=120,
        message="a long extraction to be running",
    )
    paas_sigterm(worker)
    assert worker.process.wait(timeout=30) == 0, worker.log()
    stopped_at = time.monotonic()
    log = worker.log()
    assert "handed back: the worker is shutting down" in log
    assert "Killing worker process" not in log
    with engine.connect() as connection:
        attempts = (
            connection.execute(
                sa.text("SELECT outcome FROM stage_attempts WHERE job_id = :id AND stage = 'extract_text'"),
                {"id": job_id},
            )
            .scalars()
            .all()
        )
        job = connection.execute(
            sa.text("SELECT status, attempts FROM document_queue WHERE id = :id"), {"id": job_id}
        ).one()
    assert attempts == ["handed_back"]
    assert tuple(job) == ("queued", 0), "handed back at once, its attempt not counted"
    # What the API shows meanwhile: the pages extracted so far, as the newest run's, marked incomplete.
    assert shown_run(job_id) == ResultsRun(job_id, complete=False)
    start(procfile, "worker")
    wait_all_finished(engine, uploaded, stopped_at, "SIGTERM during a long stage")
    assert_processed_once(engine, uploaded)
    assert shown_run(job_id) == ResultsRun(job_id, complete=True)


def shown_run(job_id: int) -> ResultsRun:
    """The run whose outputs the API shows for job `job_id`'s document (`results` in its answers)."""
    from docqueue.db import session_scope

    with session_scope() as session:
        document_id = session.execute(
            sa.text("SELECT document_id FROM document_queue WHERE id = :id"), {"id": job_id}
        ).scalar_one()
        return results_run(session, document_id)


def test_sigterm_then_sigkill_after_the_grace_period(procfile, engine, owner, broker):
    worker = start(procfile, "worker")
    start(procfile, "clock")
    uploaded = submit_all(owner, chaos_documents())
    wait_until(lambda: in_flight_job(engine, "extract_text", long_only=True), timeout=120, message="a long extraction")
    paas_sigterm(worker)
    time.sleep(SIGKILL_GRACE_SECONDS)
    worker.signal_group(signal.SIGKILL)
    killed_at = time.monotonic()
    start(procfile, "worker")
    wait_all_finished(engine, uploaded, killed_at, f"SIGTERM then SIGKILL after {SIGKILL_GRACE_SECONDS} s")
    assert_processed_once(engine, uploaded)


def test_redis_flushed_mid_run(procfile, engine, owner, broker, test_env):
    import redis

    start(procfile, "worker")
    start(procfile, "clock")
    uploaded = submit_all(owner, chaos_documents())
    wait_until(lambda: in_flight_job(engine, "extract_text", long_only=True), timeout=120, message="a long extraction")
    # The shared Redis holds other runs' keys: flush everything of this run's namespace, as FLUSHDB would.
    client = redis.Redis.from_url(test_env["REDIS_URL"])
    keys = list(client.scan_iter(match=f"{test_env['REDIS_NAMESPACE']}*"))
    assert keys, "queued messages were in Redis"
    client.delete(*keys)
    flushed_at = time.monotonic()
    wait_all_finished(engine, uploaded, flushed_at, "Redis flushed")
    assert_processed_once(engine, uploaded)


def test_worker_frozen_past_its_lease_publishes_nothing(procfile, engine, owner, broker):
    workers = [start(procfile, "worker"), start(procfile, "worker")]
    start(procfile, "clock")
    uploaded = submit_all(owner, chaos_documents())
    job_id, worker_id = wait_until(
        lambda: in_flight_job(engine, "extract_text", long_only=True), timeout=120, message="a long extraction"
    )
    frozen = next(w for w in workers if int(worker_id.split(":")[1]) in worker_children(w))
    frozen.signal_group(signal.SIGSTOP)
    frozen_at = time.monotonic()

    def taken_over():
        with engine.connect() as connection:
            row = connection.execute(
                sa.text("SELECT worker_id FROM document_queue WHERE id = :id"), {"id": job_id}
            ).one()
        return row.worker_id not in (None, worker_id) or all_done_by_others()

    def all_done_by_others():
        with engine.connect() as connection:
            return connection.execute(
                sa.text(
                    "SELECT count(*) FROM stage_attempts WHERE job_id = :id AND outcome = 'succeeded' "
                    "AND stage = 'extract_text'"
                ),
                {"id": job_id},
            ).scalar()

    wait_until(taken_over, timeout=120, message="another worker to take the frozen worker's item")
    frozen.signal_group(signal.SIGCONT)
    # It finds out either when it tries to publish (LeaseLost) or, first, from its heartbeat (its stage stopped).
    wait_until(
        lambda: re.search(r"lost its lease|stopped: its lease was taken away", frozen.log()),
        timeout=120,
        message="the frozen worker to find its lease lost",
    )
    wait_all_finished(engine, uploaded, frozen_at, "worker frozen past its lease")
    assert_processed_once(engine, uploaded)
    with engine.connect() as connection:
        outcomes = connection.execute(
            sa.text(
                "SELECT worker_id = :frozen, outcome FROM stage_attempts WHERE job_id = :id AND stage = 'extract_text' "
                "ORDER BY id"
            ),
            {"id": job_id, "frozen": worker_id},
        ).all()
    assert [tuple(row) for row in outcomes] == [(True, "lost"), (False, "succeeded")]
