"""One retry policy everywhere: a permanent failure is retried only when the operator says "retry anyway".

Against real Postgres, through the admin routes as a browser posts them: the
failures page keeps "will fail again" apart from "may pass now", and lists
the jobs backing off with the time of their next try.
"""

from __future__ import annotations

import re
from datetime import UTC

import pytest
import sqlalchemy as sa

from docqueue.models import User
from docqueue.queue import DocumentQueueService
from docqueue.queue.operator import OperatorActions
from docqueue.statuses import FailureKind
from tests.support.accounts import PASSWORD, operator_logged_in
from tests.support.factories import add_document
from tests.support.queue import admit, claim, failed_both_ways, job_row, only_job_id


@pytest.fixture
def operator(app, make_user):
    make_user("op@example.com", password=PASSWORD, role="operator")
    return operator_logged_in(app, "op@example.com")


def section(html: str, section_id: str) -> str:
    """The text of one `<section id=...>` of a page."""
    return re.search(rf'<section class="card" id="{section_id}">(.*?)</section>', html, re.S).group(1)


def test_a_permanent_failure_is_retried_only_anyway_and_a_transient_one_plainly(session, make_user):
    owner, _ = make_user()
    operator_id, _ = make_user("operator@example.com", role="operator")
    rejected, exhausted = failed_both_ways(session, owner)
    jobs = [only_job_id(session, rejected), only_job_id(session, exhausted)]
    actions = OperatorActions(session, session.get(User, operator_id))
    assert actions.permanent_among(jobs) == 1
    assert actions.retry(jobs) == 1
    session.commit()
    assert (job_row(session, jobs[0]).status, job_row(session, jobs[1]).status) == ("failed", "pending")
    assert actions.retry(jobs, anyway=True) == 1
    session.commit()
    retried = job_row(session, jobs[0])
    # A retried job starts clean: its old kind must not hold back a later retry.
    assert (retried.status, retried.failure_kind) == ("pending", None)
    actions_logged = session.execute(sa.text("SELECT action, count FROM audit_log ORDER BY id")).all()
    assert [tuple(row) for row in actions_logged] == [("job.retry", 1), ("job.retry_anyway", 1)]


def test_the_failures_page_separates_what_will_fail_again_from_what_may_pass(operator, make_user, session):
    client, csrf = operator
    owner, _ = make_user(concurrent_ocr_jobs=4)
    rejected, exhausted = failed_both_ways(session, owner)
    backing_off = add_document(session, owner, filename="flaky-provider.pdf")
    admit(session)
    held = claim(session, only_job_id(session, backing_off))
    DocumentQueueService(session).mark_failed(held, "embed: provider answered 503", FailureKind.TRANSIENT)
    session.commit()
    next_try = job_row(session, only_job_id(session, backing_off)).run_after

    html = client.get("/admin/failures").get_data(as_text=True)
    will_fail, may_pass, retrying = (section(html, name) for name in ("will-fail-again", "may-pass-now", "retrying"))
    assert "unsupported file type" in will_fail and "service unavailable" not in will_fail
    assert "service unavailable" in may_pass and "unsupported file type" not in may_pass
    assert "retry anyway" in will_fail and "retry anyway" not in may_pass
    assert "flaky-provider.pdf" in retrying and next_try.astimezone(UTC).strftime("%H:%M:%S") in retrying

    # A "Retry all" of the permanent group without the box ticked retries nothing, and says why.
    group = {"csrf_token": csrf, "stage": "inspect", "error_message": "unsupported file type"}
    assert client.post("/admin/failures/retry", data=group).status_code == 302
    assert job_row(session, only_job_id(session, rejected)).status == "failed"
    assert "Not retried: 1 job failed for good" in client.get("/admin/failures").get_data(as_text=True)
    assert client.post("/admin/failures/retry", data={**group, "anyway": "on"}).status_code == 302
    assert job_row(session, only_job_id(session, rejected)).status in ("pending", "queued")
    transient_group = {"csrf_token": csrf, "stage": "inspect", "error_message": "service unavailable"}
    assert client.post("/admin/failures/retry", data=transient_group).status_code == 302
    assert job_row(session, only_job_id(session, exhausted)).status in ("pending", "queued")


def test_retry_all_matching_says_how_many_would_fail_again_and_leaves_them(operator, make_user, session):
    client, csrf = operator
    owner, _ = make_user(concurrent_ocr_jobs=4)
    rejected, exhausted = failed_both_ways(session, owner)
    page = client.post("/admin/jobs/retry-matching", data={"csrf_token": csrf, "status": "failed"})
    html = page.get_data(as_text=True)
    assert re.search(r'id="preview-permanent"><strong>1</strong> of them failed for good', html)
    token = re.search(r'name="token" value="([^"]+)"', html).group(1)
    assert (
        client.post("/admin/jobs/retry-matching/confirm", data={"csrf_token": csrf, "token": token}).status_code == 302
    )
    assert job_row(session, only_job_id(session, rejected)).status == "failed"
    assert job_row(session, only_job_id(session, exhausted)).status in ("pending", "queued")
