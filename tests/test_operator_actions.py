"""Operator actions, the dashboard's figures and the job history against a real Postgres."""

from __future__ import annotations

import threading
import time

import pytest
import sqlalchemy as sa

from docqueue import lease_watch
from docqueue.errors import StageError
from docqueue.models import User
from docqueue.queue import DocumentQueueService, LeaseLost
from docqueue.queue.dashboard import SnapshotCache, read_dashboard
from docqueue.queue.heartbeats import beat
from docqueue.queue.history import completion_series
from docqueue.queue.job_listing import FilterError, JobFilter, job_detail, list_jobs
from docqueue.queue.operator import OperatorActions, admission_paused, failure_groups
from docqueue.statuses import FailureKind
from tests.factories import add_document
from tests.test_queue_service import admit, claim, job_row, only_job_id


@pytest.fixture
def operator(session, make_user):
    operator_id, _ = make_user("operator@example.com", role="operator")
    return session.get(User, operator_id)


def failed_job(session, owner_id: int, message: str = "extract_text failed: OSError: disk went away") -> int:
    """A job that was claimed and failed for good, the way a worker records it."""
    job_id = only_job_id(session, add_document(session, owner_id))
    admit(session)
    held = claim(session, job_id)
    DocumentQueueService(session).mark_failed(held, message, FailureKind.PERMANENT)
    session.commit()
    return job_id


def audit(session) -> list[tuple]:
    return [tuple(row) for row in session.execute(sa.text("SELECT actor, action, count FROM audit_log ORDER BY id"))]


def test_retry_sends_a_failed_job_back_with_fresh_attempts_and_audits_it(session, make_user, operator):
    owner, _ = make_user()
    job_id = failed_job(session, owner)
    assert OperatorActions(session, operator).retry([job_id]) == 1
    session.commit()
    job = job_row(session, job_id)
    assert (job.status, job.attempts, job.error_message, job.stage) == ("pending", 0, None, "inspect")
    assert audit(session) == [("operator@example.com", "job.retry", 1)]
    # Completed work is not retried, and the count says so.
    assert OperatorActions(session, operator).retry([job_id]) == 0


def test_cancel_takes_the_lease_so_a_running_stage_cannot_publish(session, make_user, operator):
    owner, _ = make_user()
    document_id = add_document(session, owner)
    job_id = only_job_id(session, document_id)
    admit(session)
    held = claim(session, job_id)
    assert OperatorActions(session, operator).cancel([job_id]) == 1
    session.commit()
    job = job_row(session, job_id)
    assert (job.status, job.lease_token) == ("cancelled", None)
    assert "cancelled by operator@example.com" in job.error_message
    queue = DocumentQueueService(session)
    with pytest.raises(LeaseLost):
        queue.hold_lease(held)
    session.rollback()
    assert beat(session, "w1", [job_id]) == set()
    status = session.execute(sa.text("SELECT status FROM documents WHERE id = :d"), {"d": document_id}).scalar()
    assert status == "cancelled"
    # A cancelled job can be retried, and then runs again from the stage it stopped at.
    assert OperatorActions(session, operator).retry([job_id]) == 1


def test_delete_takes_only_finished_jobs_and_clear_only_old_completed_ones(session, make_user, operator):
    owner, _ = make_user()
    live = only_job_id(session, add_document(session, owner))
    failed = failed_job(session, owner)
    old, recent = (only_job_id(session, add_document(session, owner)) for _ in range(2))
    session.execute(sa.text("SET session_replication_role = replica"))  # skip the status guard to stage history
    session.execute(
        sa.text(
            "UPDATE document_queue SET status = 'completed', completed_at = now() - make_interval(days => :d) WHERE id = :id"
        ),
        [{"id": old, "d": 40}, {"id": recent, "d": 2}],
    )
    session.execute(sa.text("SET session_replication_role = origin"))
    session.commit()
    actions = OperatorActions(session, operator)
    assert actions.delete([live, failed]) == 1
    assert actions.clear_completed(30) == 1
    session.commit()
    remaining = {row[0] for row in session.execute(sa.text("SELECT id FROM document_queue"))}
    assert remaining == {live, recent}
    assert [row[1:] for row in audit(session)] == [("job.delete", 1), ("queue.clear_completed", 1)]


def test_retry_all_matching_touches_only_the_jobs_the_preview_froze(session, make_user, operator):
    owner, _ = make_user()
    first = failed_job(session, owner)
    preview = OperatorActions(session, operator).preview_retry(JobFilter(status="failed"))
    session.commit()
    assert preview.count == 1
    later = failed_job(session, owner)  # fails after the preview: must not be touched
    assert OperatorActions(session, operator).retry_frozen(preview.token) == 1
    session.commit()
    assert (job_row(session, first).status, job_row(session, later).status) == ("pending", "failed")
    with pytest.raises(LookupError):
        OperatorActions(session, operator).retry_frozen(preview.token)


def test_paused_admission_admits_nothing_until_resumed(session, make_user, operator):
    owner, _ = make_user()
    job_id = only_job_id(session, add_document(session, owner))
    OperatorActions(session, operator).set_admission_paused(True)
    session.commit()
    assert admission_paused(session) and admit(session) == []
    OperatorActions(session, operator).set_admission_paused(False)
    session.commit()
    assert [dispatch.job_id for dispatch in admit(session)] == [job_id]


def test_priority_changes_only_waiting_jobs(session, make_user, operator):
    owner, _ = make_user()
    waiting = only_job_id(session, add_document(session, owner))
    failed = failed_job(session, owner)
    assert OperatorActions(session, operator).set_priority([waiting, failed], 99) == 1
    assert job_row(session, waiting).priority == 99
    with pytest.raises(ValueError):
        OperatorActions(session, operator).set_priority([waiting], 101)


def test_failures_are_grouped_by_error_and_a_group_can_be_retried(session, make_user, operator):
    owner, _ = make_user()
    crashed = [failed_job(session, owner) for _ in range(2)]
    failed_job(session, owner, "the PDF is password-protected")
    groups = failure_groups(session)
    assert [(g.error_class, g.count) for g in groups] == [("OSError", 2), ("rejected", 1)]
    assert OperatorActions(session, operator).retry_group(groups[0].stage, groups[0].error_message) == 2
    session.commit()
    assert {job_row(session, job_id).status for job_id in crashed} == {"pending"}
    assert OperatorActions(session, operator).discard_group(groups[1].stage, groups[1].error_message) == 1


def test_the_job_history_records_every_transition_with_its_error(session, make_user):
    owner, _ = make_user()
    job_id = failed_job(session, owner)
    detail = job_detail(session, job_id)
    changes = [(e.from_status, e.to_status, e.attempt) for e in detail.events]
    assert changes == [("pending", "queued", 0), ("queued", "processing", 1), ("processing", "failed", 1)]
    assert detail.events[-1].error_message == "extract_text failed: OSError: disk went away"
    assert job_detail(session, job_id, owner_id=owner + 1000) is None


def test_the_jobs_list_filters_and_pages_newest_first(session, make_user):
    owner, _ = make_user("lister@example.com")
    failed = failed_job(session, owner, "inspect failed: ValueError: odd 100% _value_")
    jobs = [only_job_id(session, add_document(session, owner)) for _ in range(5)]
    page = list_jobs(session, JobFilter(), limit=3)
    assert [row.id for row in page] == [jobs[4], jobs[3], jobs[2]]
    assert [row.id for row in list_jobs(session, JobFilter(), before=page[-1].id, limit=3)] == [
        jobs[1],
        jobs[0],
        failed,
    ]
    assert [row.id for row in list_jobs(session, JobFilter(error="100% _v"))] == [failed]
    assert len(list_jobs(session, JobFilter(user="LISTER@example.com", status="pending", window="1h"))) == 5
    assert list_jobs(session, JobFilter(), owner_id=owner + 1000) == []
    with pytest.raises(FilterError):
        JobFilter.from_args({"status": "exploded"})


def test_the_error_filter_matches_its_text_literally_and_ignoring_case(session, make_user, operator):
    owner, _ = make_user()
    literal = failed_job(session, owner, r"inspect failed: 100%_done in C:\tmp")
    # What the same text would match as a LIKE pattern, were %, _ and \ wildcards and escapes.
    lookalike = failed_job(session, owner, "inspect failed: 100 percent xdone in C:tmp")
    add_document(session, owner)  # no error at all

    def found(text: str) -> list[int]:
        return [row.id for row in list_jobs(session, JobFilter(error=text))]

    for text in ("100%_D", "%", "_", "\\", r"C:\t", r"%_done in C:\T"):
        assert found(text) == [literal], text
    assert found("percent XDONE") == [lookalike]
    assert found("INSPECT failed") == [lookalike, literal]
    assert found("no such error") == []
    # The bulk retry's preview selects with the same filter.
    assert OperatorActions(session, operator).preview_retry(JobFilter(error="0%_d")).count == 1


# Fills the queue with `rows` finished jobs, one in fifty failed with one of three errors, and one
# more with an error no other row has.
_QUEUE_FILL = """
INSERT INTO documents (owner_id, filename, content_type, size_bytes, sha256, status)
SELECT :owner, 'doc' || n || '.pdf', 'application/pdf', 1000, md5(n::text),
       CASE WHEN n % 50 = 0 THEN 'failed' ELSE 'completed' END
FROM generate_series(1, :rows) n;
INSERT INTO document_queue (document_id, owner_id, operation, status, stage, priority, attempts, max_attempts,
                            file_size, created_at, started_at, completed_at, run_after, error_message)
SELECT d.id, d.owner_id, 'process', d.status, 'extract_text', 5, 1, 3, d.size_bytes, now(), now(), now(), now(),
       CASE WHEN d.status = 'failed' THEN 'extract_text failed: '
           || (ARRAY['OSError: disk full', 'ValueError: bad xref', 'KeyError: font'])[1 + d.id / 50 % 3] END
FROM documents d WHERE d.owner_id = :owner;
UPDATE document_queue SET error_message = 'extract_text failed: ZeroDivisionError: page 7 of 0'
WHERE id = (SELECT max(id) FROM document_queue WHERE error_message IS NULL);
"""


def test_the_error_filter_is_served_by_the_trigram_index_where_pg_trgm_is_available(session, make_user):
    available = session.execute(sa.text("SELECT count(*) FROM pg_available_extensions WHERE name = 'pg_trgm'"))
    if not available.scalar():
        pytest.skip(
            "this PostgreSQL server has no pg_trgm (the embedded pgserver has none): migration 0011 made no index"
        )
    (definition,) = session.execute(
        sa.text("SELECT indexdef FROM pg_indexes WHERE indexname = 'document_queue_error_trgm_idx'")
    ).one()
    assert "USING gin (lower(error_message) gin_trgm_ops) WHERE (error_message IS NOT NULL)" in definition
    owner, _ = make_user()
    for statement in _QUEUE_FILL.split(";\n"):
        if statement.strip():
            session.execute(sa.text(statement), {"owner": owner, "rows": 20_000})
    session.execute(sa.text("ANALYZE document_queue"))
    where, params = JobFilter(error="ZERODIVISIONERROR: page 7").where_clause()
    query = (
        f"SELECT q.id FROM document_queue q JOIN users u ON u.id = q.owner_id WHERE {where} ORDER BY q.id DESC LIMIT 50"
    )
    plan = "\n".join(session.execute(sa.text(f"EXPLAIN {query}"), params).scalars())
    assert "Bitmap Index Scan on document_queue_error_trgm_idx" in plan, plan
    assert len(session.execute(sa.text(query), params).all()) == 1
    # A text under three characters has no trigram for the index to look up; it still matches (by a scan).
    assert len(list_jobs(session, JobFilter(error="Ze"))) == 1


def test_dashboard_counts_estimates_and_charts(session, make_user, monkeypatch):
    owner, _ = make_user()
    failed_job(session, owner)
    add_document(session, owner)
    dashboard = read_dashboard(session)
    stats = dashboard.as_stats()
    assert (stats["pending"], stats["failed"], stats["estimated"]) == (1, 1, [])
    assert dashboard.stages["inspect"]["pending"] == 1
    # Past the exact-count limit a count is the planner's estimate, and says so.
    monkeypatch.setattr("docqueue.queue.dashboard.EXACT_COUNT_LIMIT", 0)
    estimated = read_dashboard(session)
    assert estimated.statuses["failed"].estimated and estimated.as_stats()["estimated"]
    series = completion_series(session, 1)
    assert len(series.times) in (60, 61) and sum(series.completed) == 0


def test_the_snapshot_is_shared_until_it_is_too_old():
    reads = []
    cache = SnapshotCache(max_age=60)

    def read():
        reads.append(1)
        return type("Reading", (), {"taken_at": time.time()})()

    first = cache.get(read)
    assert cache.get(read) is first and len(reads) == 1


def test_a_lost_lease_wakes_only_stages_that_were_watching_before_the_check():
    with lease_watch.watching(7) as lost:
        checked_before_the_claim = time.monotonic() - 10
        lease_watch.signal_lost([7], checked_before_the_claim)
        assert not lost.is_set()
        lease_watch.signal_lost([7], time.monotonic())
        assert lost.is_set()


def test_a_stopped_stage_has_its_pdf_process_killed(test_env):
    from docqueue.pdf_pool import StageStopped, run_in_pdf_process, shutdown_pdf_pool

    stop = threading.Event()
    threading.Timer(0.5, stop.set).start()
    try:
        with pytest.raises(StageStopped):
            run_in_pdf_process(time.sleep, 120, timeout=300, stop=stop)
        # The pool still works afterwards: the killed process was replaced.
        assert run_in_pdf_process(abs, -3, timeout=60, stop=threading.Event()) == 3
    finally:
        shutdown_pdf_pool()


def test_the_dashboard_lists_live_workers_and_warns_when_beats_stop(session, make_user):
    from docqueue.queue.heartbeats import forget_worker

    owner, _ = make_user()
    add_document(session, owner)
    assert any("no worker is alive" in warning for warning in read_dashboard(session).warnings)
    beat(session, "host:1:live", [101, 102])  # running two jobs (ids of no queue item: nothing to renew)
    beat(session, "host:2:frozen", [103])
    session.execute(
        sa.text("UPDATE worker_heartbeats SET last_seen_at = now() - interval '2 minutes' WHERE running = 1")
    )
    session.commit()
    dashboard = read_dashboard(session)
    assert [(w.worker_id, w.running) for w in dashboard.workers] == [("host:1:live", 2), ("host:2:frozen", 1)]
    assert [w for w in dashboard.warnings if "host:2:frozen" in w and "stuck or has stopped" in w]
    assert not any("no worker is alive" in warning for warning in dashboard.warnings)
    forget_worker(session, "host:1:live")
    session.commit()
    assert any("no worker is alive" in warning for warning in read_dashboard(session).warnings)


def test_a_crash_keeps_its_traceback_for_the_job_page_only(session, make_user):
    owner, _ = make_user()
    document_id = add_document(session, owner)
    job_id = only_job_id(session, document_id)
    admit(session)
    held = claim(session, job_id)
    DocumentQueueService(session).mark_failed(
        held,
        "inspect failed: ValueError: boom",
        FailureKind.TRANSIENT,
        traceback="Traceback (most recent call last):\n  boom",
    )
    session.commit()
    event = job_detail(session, job_id).events[-1]
    assert (event.to_status, event.error_message) == ("pending", "inspect failed: ValueError: boom")
    assert "most recent call last" in event.traceback
    error = session.execute(sa.text("SELECT error FROM documents WHERE id = :d"), {"d": document_id}).scalar()
    assert "Traceback" not in error


def test_a_crash_traceback_shows_where_the_pdf_process_raised(test_env):
    from docqueue.pdf_pool import run_in_pdf_process, shutdown_pdf_pool
    from docqueue.stage_outcomes import crash_traceback

    try:
        with pytest.raises(StageError) as raised:
            run_in_pdf_process(int, "not a number", timeout=60, stop=threading.Event())
    finally:
        shutdown_pdf_pool()
    # The user reads plain words; the job page gets the PDF process's own traceback.
    assert str(raised.value) == "the file could not be processed because of an internal error"
    text = crash_traceback(raised.value)
    assert "invalid literal for int()" in text and "Traceback" in text


def test_a_stop_signal_that_is_not_confirmed_lets_the_stage_finish(test_env):
    from docqueue.pdf_pool import run_in_pdf_process, shutdown_pdf_pool

    stop = threading.Event()
    threading.Timer(0.3, stop.set).start()
    asked = []
    try:
        # The lease still holds (the check says no): the stage runs on to its result.
        result = run_in_pdf_process(
            time.sleep, 1.5, timeout=60, stop=stop, confirm_stop=lambda: asked.append(1) or False
        )
    finally:
        shutdown_pdf_pool()
    assert result is None and asked == [1]


def test_threads_asking_at_once_get_one_worker_id():
    from docqueue import worker_identity

    worker_identity._worker_ids.clear()
    start = threading.Barrier(8)
    seen = []

    def ask():
        start.wait()
        seen.append(worker_identity.current_worker_id())

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(seen)) == 1
