"""The queue's state machine against a real Postgres."""

from __future__ import annotations

import dataclasses

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from docqueue.queue import AlreadyQueued, DocumentQueueService, LeaseLost, priority_for_size
from docqueue.queue.dashboard import read_dashboard
from docqueue.queue.dispatcher import process_document_queue
from docqueue.queue.heartbeats import beat
from docqueue.statuses import FailureKind
from tests.factories import add_bulk_documents, add_document

MB = 1024 * 1024


def job_row(session, job_id):
    return session.execute(sa.text("SELECT * FROM document_queue WHERE id = :id"), {"id": job_id}).one()


def document_row(session, document_id):
    return session.execute(sa.text("SELECT * FROM documents WHERE id = :id"), {"id": document_id}).one()


def only_job_id(session, document_id):
    return session.execute(
        sa.text("SELECT id FROM document_queue WHERE document_id = :id ORDER BY id DESC LIMIT 1"), {"id": document_id}
    ).scalar_one()


def admit(session):
    """Admit pending work without sending messages (the worker side is not under test here)."""
    dispatches = DocumentQueueService(session).admit_pending()
    session.commit()
    return dispatches


def admitted_job(session, make_user) -> tuple[int, int]:
    """A fresh document whose job the dispatcher has admitted: (document id, job id)."""
    owner, _ = make_user()
    document_id = add_document(session, owner)
    job_id = only_job_id(session, document_id)
    admit(session)
    return document_id, job_id


def claim(session, job_id, stage="inspect", worker="w1"):
    result = DocumentQueueService(session).mark_in_progress(job_id, stage, worker)
    session.commit()
    return result


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
        DocumentQueueService(session).enqueue(document_id, "inspect", "reprocess")
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


def test_retryable_failure_backs_off_then_fails_for_good(session, make_user):
    owner, _ = make_user()
    document_id = add_document(session, owner)
    job_id = only_job_id(session, document_id)
    queue = DocumentQueueService(session)
    for attempt in (1, 2, 3):
        session.execute(sa.text("UPDATE document_queue SET run_after = now() WHERE status = 'pending'"))
        admit(session)
        held = claim(session, job_id)
        assert held.attempt == attempt
        status = queue.mark_failed(held, "service unavailable", FailureKind.TRANSIENT)
        session.commit()
        document = document_row(session, document_id)
        if attempt < 3:
            assert status == "pending"
            assert document.status == "pending"
            assert f"attempt {attempt} of 3 failed" in document.error
            assert job_row(session, job_id).run_after > job_row(session, job_id).created_at
        else:
            assert status == "failed"
            assert (document.status, document.error) == ("failed", "service unavailable")


def test_retry_delays_double_per_attempt_within_their_jitter_and_differ_between_jobs(session, make_user, test_env):
    from docqueue.settings import get_settings

    queue = DocumentQueueService(session, dataclasses.replace(get_settings(), retry_backoff_seconds=60))
    owner, _ = make_user(concurrent_ocr_jobs=10)
    job_ids = [only_job_id(session, add_document(session, owner)) for _ in range(4)]
    session.execute(sa.text("UPDATE document_queue SET max_attempts = 5 WHERE id = ANY(:ids)"), {"ids": job_ids})
    delays = {job_id: [] for job_id in job_ids}
    for attempt in (1, 2, 3, 4):
        session.execute(sa.text("UPDATE document_queue SET run_after = now() WHERE id = ANY(:ids)"), {"ids": job_ids})
        admit(session)
        for job_id in job_ids:
            assert queue.mark_failed(claim(session, job_id), "service unavailable", FailureKind.TRANSIENT) == "pending"
            # now() is the transaction's start, the same instant mark_failed added the delay to.
            delay = session.execute(
                sa.text("SELECT extract(epoch FROM run_after - now()) FROM document_queue WHERE id = :id"),
                {"id": job_id},
            ).scalar_one()
            session.commit()
            delays[job_id].append(float(delay))
    for job_id, waits in delays.items():
        for attempt, wait in enumerate(waits, start=1):
            full = 60 * 2 ** (attempt - 1)
            assert full / 2 <= wait <= full, (
                f"job {job_id} attempt {attempt} waited {wait} s, outside {full / 2}-{full}"
            )
    for attempt in range(4):
        assert len({waits[attempt] for waits in delays.values()}) == len(job_ids), "jobs failing together retry apart"


def test_permanent_failure_is_not_retried(session, make_user):
    document_id, job_id = admitted_job(session, make_user)
    status = DocumentQueueService(session).mark_failed(
        claim(session, job_id), "the PDF is encrypted", FailureKind.PERMANENT
    )
    session.commit()
    assert status == "failed"
    assert admit(session) == []
    assert document_row(session, document_id).error == "the PDF is encrypted"


def test_each_users_share_goes_first_then_priority_then_age(session, make_user, test_env):
    from docqueue.settings import get_settings

    capacity = get_settings().ocr_concurrent_jobs  # 4 by default
    busy, _ = make_user(concurrent_ocr_jobs=2)
    other, _ = make_user(concurrent_ocr_jobs=10)
    busy_jobs = [only_job_id(session, add_document(session, busy, priority=9)) for _ in range(4)]
    low = [only_job_id(session, add_document(session, other, priority=1)) for _ in range(3)]
    high = only_job_id(session, add_document(session, other, priority=9))

    admitted = [d.job_id for d in admit(session)]
    # The busy user's share (2) and the other's high and oldest low job fill the 4 slots: jobs within
    # their owner's share go before the busy user's 3rd and 4th, whatever their priority.
    assert sorted(admitted) == sorted(busy_jobs[:2] + [high] + low[:1])
    assert len(admitted) == capacity
    assert admit(session) == [], "nothing more may enter while capacity is full"


def in_flight(session, owner=None) -> int:
    return session.execute(
        sa.text(
            "SELECT count(*) FROM document_queue WHERE status IN ('queued', 'processing') "
            "AND (CAST(:owner AS bigint) IS NULL OR owner_id = :owner)"
        ),
        {"owner": owner},
    ).scalar()


def finish(session, job_ids) -> None:
    """Complete admitted jobs, as workers would."""
    queue = DocumentQueueService(session)
    for job_id in job_ids:
        queue.mark_completed(claim(session, job_id))
    session.commit()


def test_a_lone_importer_gets_the_capacity_nobody_else_wants(session, make_user):
    importer, _ = make_user(concurrent_ocr_jobs=2)
    add_bulk_documents(session, importer, 10)
    assert len(admit(session)) == 4, "an idle system's capacity goes to the only user with work"


def test_an_upload_jumps_a_bulk_backlog_even_the_importers_own(session, make_user):
    importer, _ = make_user(concurrent_ocr_jobs=2)
    bystander, _ = make_user(concurrent_ocr_jobs=2)
    add_bulk_documents(session, importer, 30)
    running = [d.job_id for d in admit(session)]
    assert in_flight(session, importer) == 4

    own_upload = only_job_id(session, add_document(session, importer))
    other_upload = only_job_id(session, add_document(session, bystander))
    assert admit(session) == [], "no slot is free yet"
    finish(session, running[:1])
    # The bystander is within their share; the importer holds more than theirs.
    assert [d.job_id for d in admit(session)] == [other_upload]
    finish(session, running[1:2])
    # Still interactive before bulk: the importer's own upload goes before its backlog.
    assert [d.job_id for d in admit(session)] == [own_upload]


def test_bulk_work_keeps_a_slot_under_a_stream_of_uploads(session, make_user):
    importer, _ = make_user()
    uploaders = [make_user(concurrent_ocr_jobs=2)[0] for _ in range(3)]
    bulk = add_bulk_documents(session, importer, 5)
    uploads = [only_job_id(session, add_document(session, uploader)) for uploader in uploaders for _ in range(3)]
    admitted = {d.job_id for d in admit(session)}
    # BULK_RESERVED_SLOTS (1) goes to the oldest bulk job; interactive work takes the other 3.
    assert len(admitted) == 4
    assert admitted & set(bulk) == {only_job_id(session, bulk[0])}
    assert len(admitted & set(uploads)) == 3


def test_stale_jobs_out_of_attempts_fail_with_a_reason(session, make_user):
    owner, _ = make_user()
    document_id = add_document(session, owner)
    job_id = only_job_id(session, document_id)
    session.execute(sa.text("UPDATE document_queue SET max_attempts = 1"))
    session.commit()
    admit(session)
    claim(session, job_id, worker="doomed")
    session.execute(sa.text("UPDATE document_queue SET lease_expires_at = now() - interval '1 second'"))
    session.commit()
    counts = DocumentQueueService(session).recover_stale_jobs()
    session.commit()
    assert (counts.requeued, counts.failed) == (0, 1)
    document = document_row(session, document_id)
    assert document.status == "failed"
    assert "worker doomed stopped responding during stage inspect (attempt 1 of 1)" in document.error


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


def test_requeue_failed_retries_transient_failures_and_reports_permanent_ones(session, make_user):
    owner, _ = make_user()
    rejected = add_document(session, owner)
    exhausted = add_document(session, owner)
    admit(session)
    queue = DocumentQueueService(session)
    queue.mark_failed(claim(session, only_job_id(session, rejected)), "unsupported file type", FailureKind.PERMANENT)
    session.execute(sa.text("UPDATE document_queue SET max_attempts = 1 WHERE document_id = :id"), {"id": exhausted})
    queue.mark_failed(claim(session, only_job_id(session, exhausted)), "service unavailable", FailureKind.TRANSIENT)
    session.commit()
    result = queue.requeue_failed()
    session.commit()
    assert (result.requeued, result.skipped) == (1, [("unsupported file type", 1)])
    assert document_row(session, exhausted).status == "pending"
    assert job_row(session, only_job_id(session, exhausted)).attempts == 0
    assert document_row(session, rejected).status == "failed"


def test_requeue_failed_leaves_an_old_failure_of_a_document_processed_since(session, make_user):
    owner, _ = make_user()
    document_id = add_document(session, owner)
    session.execute(sa.text("UPDATE document_queue SET max_attempts = 1 WHERE document_id = :id"), {"id": document_id})
    admit(session)
    queue = DocumentQueueService(session)
    queue.mark_failed(claim(session, only_job_id(session, document_id)), "timeout", FailureKind.TRANSIENT)
    queue.enqueue(document_id, "inspect", "reprocess")
    session.commit()
    admit(session)
    queue.mark_completed(claim(session, only_job_id(session, document_id)))
    session.commit()
    assert queue.requeue_failed().requeued == 0
    assert document_row(session, document_id).status == "completed"


def test_queue_stats_fields(session, make_user):
    owner, _ = make_user()
    done = only_job_id(session, add_document(session, owner))
    add_document(session, owner)
    admit(session)
    DocumentQueueService(session).mark_completed(claim(session, done))
    session.commit()
    stats = read_dashboard(session).as_stats()
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
