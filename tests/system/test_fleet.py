"""Many machines: two worker groups, two clocks, one Postgres and one Redis between them.

Each "machine" is its own process tree (a worker group with its own PDF
pools and temp dir, and its own clock), named by MACHINE_NAME, sharing only
Postgres and Redis, as two dynos or two VMs would. A PaaS may run two
clocks during a deploy, so both machines run one.
"""

from __future__ import annotations

import collections
import signal
import time

import dramatiq
import sqlalchemy as sa

from docqueue.pipeline import PIPELINE
from docqueue.queue import dispatch_requests
from docqueue.queue.operator import OperatorActions
from tests.support.chaos import (
    assert_processed_once,
    chaos_documents,
    start,
    submit_all,
    wait_all_finished,
)
from tests.support.factories import add_document
from tests.support.processes import wait_until


def start_machine(procfile, tmp_path, name: str, **env) -> list:
    """A machine's processes: a worker group and a clock, with their own name and temp dir."""
    scratch = tmp_path / name
    scratch.mkdir()
    return [start(procfile, process, MACHINE_NAME=name, TMPDIR=scratch, **env) for process in ("worker", "clock")]


def machines_that_worked(engine, ids) -> collections.Counter:
    """Finished stage attempts per machine (the part of the worker id before the first ':')."""
    with engine.connect() as connection:
        workers = connection.execute(
            sa.text("SELECT worker_id FROM stage_attempts WHERE document_id = ANY(:ids)"), {"ids": list(ids)}
        ).scalars()
        return collections.Counter(worker.split(":")[0] for worker in workers)


def running_attempts(engine, machine: str) -> list[tuple[int, str]]:
    """(job id, stage) of the attempts `machine`'s workers have open now."""
    with engine.connect() as connection:
        rows = connection.execute(
            sa.text("SELECT job_id, stage FROM stage_attempts WHERE outcome = 'running' AND worker_id LIKE :machine"),
            {"machine": f"{machine}:%"},
        ).all()
    return [tuple(row) for row in rows]


def freeze_while_working(engine, machine: list, name: str) -> list[tuple[int, str]]:
    """SIGSTOP `machine` at a moment it has attempts open (so none can end before the kill); return them."""

    def frozen_mid_attempt():
        if not running_attempts(engine, name):
            return None
        for process in machine:
            process.signal_group(signal.SIGSTOP)
        held = running_attempts(engine, name)  # final: nothing of the machine runs now
        if not held:
            for process in machine:
                process.signal_group(signal.SIGCONT)
        return held

    return wait_until(frozen_mid_attempt, timeout=180, message=f"{name} to be in the middle of a stage")


def test_two_machines_one_killed_mid_run_lose_and_double_nothing(procfile, engine, make_user, tmp_path, broker):
    owner = make_user(concurrent_ocr_jobs=6)[0]
    doomed = start_machine(procfile, tmp_path, "machine-a")
    start_machine(procfile, tmp_path, "machine-b")
    uploaded = submit_all(owner, chaos_documents())

    # Both machines at work, then machine A (worker group and clock) SIGKILLed in the middle of its stages.
    wait_until(lambda: running_attempts(engine, "machine-b"), timeout=180, message="machine B to be working")
    held = freeze_while_working(engine, doomed, "machine-a")
    for process in doomed:
        process.kill()
    killed_at = time.monotonic()

    wait_all_finished(engine, uploaded, killed_at, "one of two machines SIGKILLed mid-run")
    assert_processed_once(engine, uploaded)
    with engine.connect() as connection:
        for job_id, stage in held:
            outcomes = connection.execute(
                sa.text(
                    "SELECT split_part(worker_id, ':', 1), outcome FROM stage_attempts "
                    "WHERE job_id = :id AND stage = :stage ORDER BY id"
                ),
                {"id": job_id, "stage": stage},
            ).all()
            # What A was killed in was taken back and done by B.
            assert [tuple(row) for row in outcomes] == [("machine-a", "lost"), ("machine-b", "succeeded")], (
                job_id,
                stage,
                outcomes,
            )
    assert set(machines_that_worked(engine, uploaded)) == {"machine-a", "machine-b"}


def _admissions(engine) -> collections.Counter:
    """How many times each job went from pending to queued (admitted)."""
    with engine.connect() as connection:
        rows = connection.execute(
            sa.text("SELECT job_id FROM job_events WHERE from_status = 'pending' AND to_status = 'queued'")
        ).scalars()
        return collections.Counter(rows)


def _messages_per_job(broker) -> collections.Counter:
    """Stage messages Redis holds, counted per job: a job dispatched twice shows twice."""
    actors = {stage.actor_name for stage in PIPELINE}
    counts = collections.Counter()
    for queue_name in {stage.queue_name for stage in PIPELINE}:
        for data in broker.client.hvals(f"{broker.namespace}:{queue_name}.msgs"):
            message = dramatiq.Message.decode(data)
            if message.actor_name in actors:
                counts[message.args[0]] += 1
    return counts


def _in_flight(engine) -> int:
    with engine.connect() as connection:
        return connection.execute(
            sa.text("SELECT count(*) FROM document_queue WHERE status IN ('queued', 'processing')")
        ).scalar_one()


def test_two_clocks_woken_together_admit_each_job_once_within_capacity(procfile, engine, session, make_user, broker):
    capacity, rounds = 4, 10
    owner = make_user(concurrent_ocr_jobs=100)[0]
    documents = [add_document(session, owner, filename=f"doc-{n}.pdf") for n in range(capacity * rounds)]
    job_ids = (
        session.execute(sa.text("SELECT id FROM document_queue WHERE document_id = ANY(:ids)"), {"ids": documents})
        .scalars()
        .all()
    )
    # No worker: admitted jobs stay queued, so every admission and message stays countable. No re-sends either.
    env = dict(OCR_CONCURRENT_JOBS=capacity, REDISPATCH_AFTER_SECONDS=3600, LOST_MESSAGE_AFTER_SECONDS=3600)
    clocks = [procfile("clock", MACHINE_NAME=name, **env) for name in ("clock-a", "clock-b")]

    for round_number in range(1, rounds + 1):
        expected = round_number * capacity
        wait_until(
            lambda: sum(_admissions(engine).values()) >= expected,
            timeout=60,
            message=f"round {round_number}'s admissions",
        )
        # Jobs stay queued until the test cancels them: one admitted too many shows here or in the next round.
        assert (sum(_admissions(engine).values()), _in_flight(engine)) == (expected, capacity), round_number
        if round_number == rounds:
            break
        # Free every slot at once, then wake both clocks with one notification: they race for the same slots.
        queued = session.execute(sa.text("SELECT id FROM document_queue WHERE status = 'queued'")).scalars().all()
        OperatorActions(session, None).cancel(queued)
        dispatch_requests.notify_clock(session)
        session.commit()

    assert _admissions(engine) == collections.Counter(job_ids), "each job admitted exactly once"
    assert _messages_per_job(broker) == collections.Counter(job_ids), "each admitted job's message sent exactly once"
    for clock in clocks:
        assert clock.process.poll() is None, clock.log()
