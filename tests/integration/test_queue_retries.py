"""Failed and stale jobs against a real Postgres: back-off between attempts, failing for good, requeueing."""

from __future__ import annotations

import dataclasses

import sqlalchemy as sa

from docqueue.pipeline import STAGE_NAMES
from docqueue.queue import DocumentQueueService
from docqueue.statuses import FailureKind
from tests.support.factories import add_document
from tests.support.queue import admit, admitted_job, claim, document_row, failed_both_ways, job_row, only_job_id


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


def test_requeue_failed_retries_transient_failures_and_reports_permanent_ones(session, make_user):
    rejected, exhausted = failed_both_ways(session, make_user()[0])
    result = DocumentQueueService(session).requeue_failed()
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
    queue.enqueue(document_id, STAGE_NAMES, "reprocess")
    session.commit()
    admit(session)
    queue.mark_completed(claim(session, only_job_id(session, document_id)))
    session.commit()
    assert queue.requeue_failed().requeued == 0
    assert document_row(session, document_id).status == "completed"
