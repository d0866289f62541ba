"""The job history and the jobs list against a real Postgres: transitions, tracebacks, filters and paging."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from docqueue.pipeline import STAGE_NAMES
from docqueue.queue import DocumentQueueService
from docqueue.queue.job_listing import FilterError, JobFilter, job_detail, list_jobs
from docqueue.statuses import FailureKind
from tests.support.factories import add_document
from tests.support.queue import admit, claim, failed_job, only_job_id


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
        JobFilter.from_args({"status": "exploded"}, STAGE_NAMES)


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
