"""Attempt history, hand-back, worker presence and cleanup, against a real Postgres."""

from __future__ import annotations

import sqlalchemy as sa

from docqueue.db import session_scope
from docqueue.pipeline import STAGE_NAMES
from docqueue.queue import DocumentQueueService
from docqueue.queue.attempts import attempt_history, close_attempt
from docqueue.queue.cleanup import delete_old_completed
from docqueue.queue.handback import hand_back
from docqueue.queue.heartbeats import beat, forget_worker, liveness
from docqueue.settings import get_settings
from docqueue.statuses import AttemptOutcome
from tests.support.factories import add_document


def claimed(session, owner, worker="w1"):
    document_id = add_document(session, owner)
    queue = DocumentQueueService(session)
    queue.admit_pending()
    job_id = session.execute(
        sa.text("SELECT id FROM document_queue WHERE document_id = :d"), {"d": document_id}
    ).scalar()
    claim = queue.claim(job_id, "inspect", worker)  # its statement opens the attempt
    session.commit()
    return document_id, claim


def test_the_clock_closes_a_dead_workers_attempt_as_lost(session, make_user):
    document_id, claim = claimed(session, make_user()[0], worker="dead")
    session.execute(sa.text("UPDATE document_queue SET lease_expires_at = now() - interval '1 second'"))
    DocumentQueueService(session).recover_stale_jobs()
    session.commit()
    [attempt] = attempt_history(session, document_id)
    assert (attempt["stage"], attempt["attempt"], attempt["worker"], attempt["outcome"]) == (
        "inspect",
        1,
        "dead",
        "lost",
    )
    assert attempt["error_class"] == "worker lost"
    assert attempt["error_message"] == "worker dead stopped responding during stage inspect (attempt 1 of 3)"
    assert attempt["finished_at"] and attempt["duration_ms"] >= 0
    # The worker that comes back later cannot rewrite what happened.
    close_attempt(session, claim, AttemptOutcome.SUCCEEDED)
    session.commit()
    assert attempt_history(session, document_id)[0]["outcome"] == "lost"


def test_a_handed_back_item_is_queued_again_with_its_attempt_given_back(session, make_user):
    document_id, claim = claimed(session, make_user()[0])
    dispatch = hand_back(session, claim)
    session.commit()
    assert (dispatch.job_id, dispatch.stage) == (claim.job_id, "inspect")
    job = session.execute(sa.text("SELECT status, attempts, lease_token, dispatched_at FROM document_queue")).one()
    assert (job.status, job.attempts, job.lease_token) == ("queued", 0, None)
    assert [a["outcome"] for a in attempt_history(session, document_id)] == ["handed_back"]
    document = session.execute(sa.text("SELECT status FROM documents WHERE id = :d"), {"d": document_id}).scalar()
    assert document == "processing", "the user sees it still in progress, not failed"


def test_work_waiting_with_no_worker_heard_from_is_unattended(session, make_user, monkeypatch):
    monkeypatch.setenv("NO_WORKER_ALERT_SECONDS", "60")
    get_settings.cache_clear()
    add_document(session, make_user()[0])
    assert liveness(session).unattended(watched_for=61), "nobody ever beat, watched long enough"
    assert not liveness(session).unattended(watched_for=5), "workers get time to start"
    beat(session, "w1", [])
    assert not liveness(session).unattended(watched_for=61)
    session.execute(sa.text("UPDATE worker_heartbeats SET last_seen_at = now() - interval '2 minutes'"))
    assert liveness(session).unattended(watched_for=61)
    forget_worker(session, "w1")
    assert session.execute(sa.text("SELECT count(*) FROM worker_heartbeats")).scalar() == 0
    monkeypatch.undo()
    get_settings.cache_clear()


def test_cleanup_deletes_only_old_completed_items_in_batches(session, make_user, monkeypatch):
    monkeypatch.setenv("QUEUE_BATCH_SIZE", "2")
    monkeypatch.setenv("COMPLETED_RETENTION_DAYS", "7")
    get_settings.cache_clear()
    owner = make_user()[0]
    ids = [add_document(session, owner) for _ in range(6)]
    # Completed long ago (5), completed recently (1): set the way the workers would leave them.
    session.execute(sa.text("UPDATE document_queue SET status = 'queued'"))
    session.execute(sa.text("UPDATE document_queue SET status = 'processing', started_at = now()"))
    session.execute(sa.text("UPDATE document_queue SET status = 'completed', completed_at = now() - interval '8 days'"))
    session.execute(sa.text("UPDATE document_queue SET completed_at = now() WHERE document_id = :d"), {"d": ids[0]})
    session.commit()
    assert delete_old_completed(session_scope) == 5
    left = session.execute(sa.text("SELECT document_id FROM document_queue")).scalars().all()
    assert left == [ids[0]]
    assert session.execute(sa.text("SELECT count(*) FROM documents")).scalar() == 6, "documents stay"
    monkeypatch.undo()
    get_settings.cache_clear()


def test_cleanup_keeps_the_run_a_document_shows_and_deletes_the_runs_it_replaced(session, make_user):
    from docqueue.results.pages import page_texts
    from tests.support.factories import make_pdf
    from tests.support.stages import process

    owner = make_user()[0]
    document_id = add_document(session, owner, make_pdf(["first words", "second words"]))
    process(session, document_id)
    DocumentQueueService(session).enqueue(document_id, STAGE_NAMES, "reprocess")
    session.commit()
    process(session, document_id)
    runs = session.execute(
        sa.text("SELECT id FROM document_queue WHERE document_id = :d ORDER BY id"), {"d": document_id}
    ).scalars()
    replaced, shown = list(runs)
    # Both runs finished long ago: only the one the document no longer shows may go.
    session.execute(sa.text("UPDATE document_queue SET completed_at = now() - interval '30 days'"))
    session.commit()
    assert delete_old_completed(session_scope) == 1
    left = session.execute(sa.text("SELECT id FROM document_queue WHERE document_id = :d"), {"d": document_id})
    assert left.scalars().all() == [shown]
    assert page_texts(session, document_id) == [(1, "first words"), (2, "second words")], "the text is still there"
    results = session.execute(sa.text("SELECT results_job_id FROM documents WHERE id = :d"), {"d": document_id})
    assert results.scalar() == shown
    assert replaced != shown
