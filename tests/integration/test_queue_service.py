"""The queue's state machine against a real Postgres: enqueue, claim, leases, hand-offs, heartbeats, re-sends."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from docqueue.dispatch.dispatcher import process_document_queue
from docqueue.jobs import AlreadyQueued, LeaseLost
from docqueue.pipeline import STAGE_NAMES
from docqueue.queue import DocumentQueueService, priority_for_size
from docqueue.queue.dashboard import read_dashboard
from docqueue.queue.heartbeats import beat
from docqueue.statuses import FailureKind
from tests.support.factories import add_document
from tests.support.queue import admit, admitted_job, claim, document_row, job_row, only_job_id

MB = 1024 * 1024


@pytest.mark.parametrize(
    "size, priority",
    [
        (0, 10),
        (1 * MB, 10),
        (1 * MB + 1, 8),
        (5 * MB, 8),
        (5 * MB + 1, 6),
        (10 * MB, 6),
        (50 * MB, 4),
        (50 * MB + 1, 2),
    ],
)
def test_priority_follows_file_size(size, priority):
    assert priority_for_size(size) == priority


def test_enqueue_uses_size_priority_unless_given(session, make_user):
    owner, _ = make_user()
    by_size = add_document(session, owner)
    explicit = add_document(session, owner, priority=1)
    assert job_row(session, only_job_id(session, by_size)).priority == 10
    assert job_row(session, only_job_id(session, explicit)).priority == 1
    job = job_row(session, only_job_id(session, by_size))
    assert (job.status, job.stage, job.attempts, job.operation) == ("pending", "inspect", 0, "process")


def test_a_document_has_at_most_one_live_job(session, make_user):
    owner, _ = make_user()
    document_id = add_document(session, owner)
    with pytest.raises(AlreadyQueued):
        DocumentQueueService(session).enqueue(document_id, STAGE_NAMES, "reprocess")
    session.rollback()
    count = session.execute(sa.text("SELECT count(*) FROM document_queue")).scalar()
    assert count == 1


def test_claim_is_one_winner_and_drops_stale_messages(session, make_user):
    owner, _ = make_user()
    job_id = only_job_id(session, add_document(session, owner))
    assert claim(session, job_id) is None, "a pending (not yet admitted) job must not be claimable"
    admit(session)
    assert claim(session, job_id, stage="extract_text") is None, "a message for the wrong stage is stale"
    first = claim(session, job_id)
    assert first is not None and first.attempt == 1
    assert claim(session, job_id, worker="w2") is None, "a duplicate message must not claim again"
    row = job_row(session, job_id)
    assert (row.status, row.attempts, row.worker_id) == ("processing", 1, "w1")
    assert document_row(session, first.document_id).status == "processing"


def test_a_worker_that_lost_its_lease_cannot_publish(session, make_user):
    document_id, job_id = admitted_job(session, make_user)
    stale = claim(session, job_id)
    # The worker goes quiet: its lease lapses and the dispatcher takes the job back.
    session.execute(sa.text("UPDATE document_queue SET lease_expires_at = now() - interval '1 second'"))
    session.commit()
    assert DocumentQueueService(session).recover_stale_jobs().requeued == 1
    session.commit()
    admit(session)
    fresh = claim(session, job_id, worker="w2")
    assert fresh.attempt == 2
    queue = DocumentQueueService(session)
    with pytest.raises(LeaseLost):
        queue.hold_lease(stale)
    with pytest.raises(LeaseLost):
        queue.mark_completed(stale)
    with pytest.raises(LeaseLost):
        queue.mark_failed(stale, "late", FailureKind.PERMANENT)
    session.rollback()
    assert document_row(session, document_id).status == "processing"
    queue.mark_completed(fresh)
    session.commit()
    assert job_row(session, job_id).status == "completed"
    assert document_row(session, document_id).status == "completed"


def test_stage_handoff_resets_attempts_and_keeps_the_job_in_flight(session, make_user):
    document_id, job_id = admitted_job(session, make_user)
    first = claim(session, job_id)
    dispatch = DocumentQueueService(session).advance(first, "extract_text", 10)
    session.commit()
    assert (dispatch.job_id, dispatch.stage) == (job_id, "extract_text")
    row = job_row(session, job_id)
    assert (row.status, row.stage, row.attempts, row.lease_token) == ("queued", "extract_text", 0, None)
    assert document_row(session, document_id).progress == 10
    assert claim(session, job_id, stage="inspect") is None
    assert claim(session, job_id, stage="extract_text").attempt == 1


def test_heartbeat_extends_only_this_workers_leases(session, make_user):
    _, job_id = admitted_job(session, make_user)
    claim(session, job_id, worker="w1")
    before = job_row(session, job_id).lease_expires_at
    assert beat(session, "someone-else", [job_id]) == set()
    assert beat(session, "w1", [job_id]) == {job_id}
    session.commit()
    assert job_row(session, job_id).lease_expires_at >= before
    seen = session.execute(sa.text("SELECT worker_id FROM worker_heartbeats ORDER BY worker_id")).scalars().all()
    assert seen == ["someone-else", "w1"], "every beat records its worker as alive"


def test_lost_messages_are_sent_again(session, make_user, broker):
    owner, _ = make_user()
    job_id = only_job_id(session, add_document(session, owner))
    admit(session)  # admitted, but the message is "lost": admit() above never sent it
    session.execute(sa.text("UPDATE document_queue SET dispatched_at = now() - interval '1 hour'"))
    session.commit()
    report = process_document_queue(session)
    assert (report.redispatched, report.sent) == (1, 1)
    queue_key = f"{broker.namespace}:documents"
    messages = broker.client.hvals(f"{queue_key}.msgs")
    assert len(messages) == 1 and f"[{job_id}]".encode() in messages[0]


def test_database_refuses_illegal_transitions(session, make_user):
    owner, _ = make_user()
    job_id = only_job_id(session, add_document(session, owner))
    with pytest.raises(DBAPIError, match="illegal queue transition pending -> completed"):
        session.execute(sa.text("UPDATE document_queue SET status = 'completed' WHERE id = :id"), {"id": job_id})
    session.rollback()


def test_queue_stats_fields(session, make_user):
    owner, _ = make_user()
    done = only_job_id(session, add_document(session, owner))
    add_document(session, owner)
    admit(session)
    DocumentQueueService(session).mark_completed(claim(session, done))
    session.commit()
    stats = read_dashboard(session, STAGE_NAMES).as_stats()
    assert {
        "pending",
        "processing",
        "failed",
        "completed_today",
        "avg_wait_time_minutes",
        "oldest_pending_minutes",
    } <= set(stats)
    assert (stats["pending"], stats["processing"], stats["failed"], stats["completed_today"]) == (1, 0, 0, 1)
    # JSON numbers, not Decimals that the API would render as strings.
    assert all(type(stats[name]) is int for name in ("pending", "processing", "failed", "completed_today"))
    assert stats["avg_wait_time_minutes"] >= 0 and stats["oldest_pending_minutes"] >= 0
