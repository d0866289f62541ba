"""Operator actions against a real Postgres: retry, cancel, delete, pause, priority, failure groups; each audited."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from docqueue.jobs import LeaseLost
from docqueue.models import User
from docqueue.queue import DocumentQueueService
from docqueue.queue.failures import failure_groups
from docqueue.queue.heartbeats import beat
from docqueue.queue.job_listing import JobFilter, list_jobs
from docqueue.queue.operator import OperatorActions, admission_paused
from tests.support.factories import add_document
from tests.support.queue import admit, claim, failed_job, job_row, only_job_id


@pytest.fixture
def operator(session, make_user):
    operator_id, _ = make_user("operator@example.com", role="operator")
    return session.get(User, operator_id)


def audit(session) -> list[tuple]:
    return [tuple(row) for row in session.execute(sa.text("SELECT actor, action, count FROM audit_log ORDER BY id"))]


def test_retry_sends_a_failed_job_back_with_fresh_attempts_and_audits_it(session, make_user, operator):
    owner, _ = make_user()
    job_id = failed_job(session, owner)
    assert OperatorActions(session, operator).retry([job_id], anyway=True) == 1
    session.commit()
    job = job_row(session, job_id)
    assert (job.status, job.attempts, job.error_message, job.stage) == ("pending", 0, None, "inspect")
    assert audit(session) == [("operator@example.com", "job.retry_anyway", 1)]
    # Completed work is not retried, and the count says so.
    assert OperatorActions(session, operator).retry([job_id], anyway=True) == 0


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
    assert OperatorActions(session, operator).retry_frozen(preview.token, anyway=True) == 1
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
    assert [(g.error_class, g.count, g.will_fail_again) for g in groups] == [
        ("OSError", 2, True),
        ("rejected", 1, True),
    ]
    assert OperatorActions(session, operator).retry_group(groups[0].stage, groups[0].error_message) == 0
    assert OperatorActions(session, operator).retry_group(groups[0].stage, groups[0].error_message, anyway=True) == 2
    session.commit()
    assert {job_row(session, job_id).status for job_id in crashed} == {"pending"}
    assert OperatorActions(session, operator).discard_group(groups[1].stage, groups[1].error_message) == 1


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
