"""The admin actions posted through their routes as a browser would (session cookie and CSRF token),
each checked for its change and its audit record."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from tests.support.accounts import PASSWORD, last_audit, operator_logged_in
from tests.support.factories import add_document
from tests.support.queue import failed_job, job_row, only_job_id


@pytest.fixture
def operator(app, make_user):
    make_user("op@example.com", password=PASSWORD, role="operator")
    return operator_logged_in(app, "op@example.com")


def test_priority_and_cancel_change_the_selected_jobs_and_are_audited(operator, make_user, session):
    client, csrf = operator
    owner, _ = make_user()
    job_id = only_job_id(session, add_document(session, owner))
    posted = {"csrf_token": csrf, "job_id": str(job_id)}
    assert client.post("/admin/jobs/action", data={**posted, "action": "priority", "priority": "7"}).status_code == 302
    assert last_audit(session) == ("op@example.com", "job.priority", 1, f"priority 7: jobs {job_id}")
    assert job_row(session, job_id).priority == 7
    assert client.post("/admin/jobs/action", data={**posted, "action": "cancel"}).status_code == 302
    assert last_audit(session) == ("op@example.com", "job.cancel", 1, f"jobs {job_id}")
    assert job_row(session, job_id).status == "cancelled"


def test_delete_and_retry_of_two_selected_jobs(operator, make_user, session):
    client, csrf = operator
    owner, _ = make_user(concurrent_ocr_jobs=4)
    gone, first, second = (failed_job(session, owner) for _ in range(3))
    response = client.post("/admin/jobs/action", data={"csrf_token": csrf, "action": "delete", "job_id": str(gone)})
    assert response.status_code == 302
    assert last_audit(session) == ("op@example.com", "job.delete", 1, f"jobs {gone}")
    assert session.execute(sa.text("SELECT count(*) FROM document_queue WHERE id = :j"), {"j": gone}).scalar() == 0

    both = {"csrf_token": csrf, "action": "retry", "job_id": [str(first), str(second)]}
    # Both failed for good: a plain retry leaves them and says why, the same rule as the API's requeue.
    assert client.post("/admin/jobs/action", data=both).status_code == 302
    assert {job_row(session, job).status for job in (first, second)} == {"failed"}
    said = client.get("/admin/jobs").get_data(as_text=True)
    assert "Retried 0 jobs." in said and "Not retried: 2 jobs failed for good" in said
    assert client.post("/admin/jobs/action", data={**both, "anyway": "on"}).status_code == 302
    assert last_audit(session) == ("op@example.com", "job.retry_anyway", 2, f"jobs {first}, {second}")
    # Retried work goes back to pending, and the nudge after the retry may already have admitted it.
    assert {job_row(session, job).status for job in (first, second)} <= {"pending", "queued"}
    assert {job_row(session, job).attempts for job in (first, second)} == {0}
    assert "Retried 2 jobs." in client.get("/admin/jobs").get_data(as_text=True)


def test_pause_and_resume_admission_are_audited(operator, session):
    client, csrf = operator
    paused = sa.text("SELECT COALESCE(bool_or(admission_paused), false) FROM queue_control")
    assert client.post("/admin/queue/pause", data={"csrf_token": csrf}).status_code == 302
    assert last_audit(session)[:3] == ("op@example.com", "queue.pause", 0)
    assert session.execute(paused).scalar() is True
    assert client.post("/admin/queue/resume", data={"csrf_token": csrf}).status_code == 302
    assert last_audit(session)[:3] == ("op@example.com", "queue.resume", 0)
    assert session.execute(paused).scalar() is False


def test_discarding_a_failure_group_deletes_only_that_group(operator, make_user, session):
    client, csrf = operator
    owner, _ = make_user(concurrent_ocr_jobs=4)
    group = [failed_job(session, owner, "inspect failed: OSError: gone") for _ in range(2)]
    other = failed_job(session, owner, "inspect failed: ValueError: odd")
    data = {"csrf_token": csrf, "stage": "inspect", "error_message": "inspect failed: OSError: gone"}
    assert client.post("/admin/failures/discard", data=data).status_code == 302
    assert last_audit(session) == ("op@example.com", "job.discard_group", 2, "inspect: inspect failed: OSError: gone")
    remaining = session.execute(sa.text("SELECT id FROM document_queue WHERE id = ANY(:ids)"), {"ids": [*group, other]})
    assert remaining.scalars().all() == [other]


def test_an_admin_resets_a_users_api_token(app, make_user, session):
    make_user("boss@example.com", password=PASSWORD, role="admin")
    user_id, old_token = make_user("holder@example.com")
    client, csrf = operator_logged_in(app, "boss@example.com")
    assert client.post(f"/admin/users/{user_id}/reset-token", data={"csrf_token": csrf}).status_code == 302
    assert last_audit(session) == ("boss@example.com", "user.reset_token", 1, "holder@example.com")
    page = client.get("/admin/users").get_data(as_text=True)
    new_token = re.search(r"New API token for holder@example.com, shown this once: (\S+?)<", page).group(1)

    def stats(token: str) -> int:
        return client.get("/api/queue/stats", headers={"Authorization": f"Bearer {token}"}).status_code

    assert (stats(old_token), stats(new_token)) == (401, 200)
