"""Memory: pressure read from the kernel, smaller batches under it, and worker processes recycled."""

from __future__ import annotations

import os

import pytest
import sqlalchemy as sa

from docqueue.runtime.memory import batch_size, family_rss_bytes, memory_used_percent, under_pressure
from docqueue.settings import get_settings
from tests.support.factories import add_document, make_pdf
from tests.support.processes import wait_until


@pytest.fixture
def pause_at(monkeypatch):
    def set_threshold(percent: int) -> None:
        monkeypatch.setenv("MEMORY_PAUSE_PERCENT", str(percent))
        get_settings.cache_clear()

    yield set_threshold
    monkeypatch.undo()
    get_settings.cache_clear()


def test_batches_shrink_only_under_memory_pressure(pause_at):
    assert 0 < memory_used_percent() < 100
    pause_at(100)
    assert not under_pressure() and batch_size(50) == 50
    pause_at(1)
    assert under_pressure() and batch_size(50) == 12 and batch_size(2) == 1


def test_resident_memory_counts_the_process_itself():
    assert family_rss_bytes(os.getpid()) > 10 * 1024 * 1024


def completed_once(session, ids) -> bool:
    """Every document completed, each stage claimed once (nothing lost or retried)."""
    rows = session.execute(
        sa.text(
            "SELECT d.status, q.attempts FROM documents d JOIN document_queue q ON q.document_id = d.id "
            "WHERE d.id = ANY(:ids)"
        ),
        {"ids": ids},
    ).all()
    session.commit()
    return [tuple(row) for row in rows] == [("completed", 1)] * len(ids)


def wait_for_fresh_worker_processes(worker) -> None:
    """The worker's master started new worker processes, and keeps running."""
    wait_until(
        lambda: worker.log().count("is booting up") >= 2,
        timeout=60,
        message="the master to start fresh worker processes",
    )
    assert worker.process.poll() is None, "the worker as a whole keeps running"


def wait_for_recycling(worker, reason: str) -> None:
    """The worker process asked to be recycled (`reason` in its log) and the master started fresh ones."""
    # Logged after the message's work has committed, and relayed by the master: it may come after the documents.
    wait_until(lambda: reason in worker.log(), timeout=30, message=f"the worker process to log {reason!r}")
    wait_for_fresh_worker_processes(worker)


def test_worker_processes_are_recycled_after_n_messages_and_lose_nothing(procfile, session, make_user):
    owner, _ = make_user(concurrent_ocr_jobs=1)
    ids = [add_document(session, owner, make_pdf([f"document {n}"])) for n in range(3)]
    worker = procfile("worker", WORKER_MAX_MESSAGES=2)
    procfile("clock")
    wait_until(lambda: completed_once(session, ids), timeout=180, message="every document to complete across recycles")
    wait_for_recycling(worker, "Recycling the worker processes: 2 messages handled")


def test_worker_processes_are_recycled_above_the_rss_cap_and_lose_nothing(procfile, session, make_user):
    owner, _ = make_user(concurrent_ocr_jobs=1)
    ids = [add_document(session, owner, make_pdf([f"document {n}"])) for n in range(2)]
    # 1 MB: every worker process is over it after its first message.
    worker = procfile("worker", WORKER_MAX_RSS_MB=1)
    procfile("clock")
    wait_until(lambda: completed_once(session, ids), timeout=240, message="every document to complete across recycles")
    wait_for_recycling(worker, "MB resident (WORKER_MAX_RSS_MB=1)")


def job_state(session, document_id) -> tuple:
    row = session.execute(
        sa.text("SELECT status, attempts FROM document_queue WHERE document_id = :d"), {"d": document_id}
    ).one()
    session.commit()
    return tuple(row)


def test_a_worker_above_its_pause_percent_claims_nothing_and_lets_go_when_it_stops(procfile, session, make_user):
    owner, _ = make_user()
    document_id = add_document(session, owner, make_pdf(["paused"]))
    procfile("clock")
    # Any machine uses more than 1% of its memory: the worker takes the message and waits before claiming it.
    paused = procfile("worker", MEMORY_PAUSE_PERCENT=1)
    wait_until(lambda: "pausing before message" in paused.log(), timeout=90, message="the worker to pause")
    assert job_state(session, document_id) == ("queued", 0), "a message was taken but its job never claimed"

    paused.stop()
    assert "skipping message" in paused.log()
    assert job_state(session, document_id) == ("queued", 0)
    # MEMORY_PAUSE_PERCENT is read at start: a worker started with room claims and runs the job.
    procfile("worker", MEMORY_PAUSE_PERCENT=100)
    wait_until(lambda: completed_once(session, [document_id]), timeout=120, message="the document to complete")
