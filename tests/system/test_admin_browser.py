"""The admin pages in real Chromium against real gunicorn, dramatiq worker and clock processes.

Each page visited is screenshotted into artifacts/screenshots/ (CI keeps that folder).
"""

from __future__ import annotations

import re

import requests
import sqlalchemy as sa
from playwright.sync_api import expect

from docqueue.statuses import FailureKind
from tests.support.admin_browser import log_in, shot
from tests.support.browser import PASSWORD
from tests.support.factories import add_document
from tests.support.hostile_files import make_endless_pdf
from tests.support.processes import CORPUS, start_web, wait_until

FINISHED_TIMEOUT_MS = 60_000


def upload(base_url: str, token: str, name: str, data: bytes) -> int:
    response = requests.post(
        f"{base_url}/api/documents",
        headers={"Authorization": f"Bearer {token}"},
        files={"file": (name, data)},
        timeout=30,
    )
    response.raise_for_status()
    return response.json()["id"]


def job_of(document_id: int) -> sa.Row:
    from docqueue.db import get_engine

    with get_engine().connect() as connection:
        return connection.execute(
            sa.text("SELECT * FROM document_queue WHERE document_id = :d ORDER BY id DESC LIMIT 1"), {"d": document_id}
        ).one()


def fail_as_a_crashed_worker_would(document_id: int, message: str) -> int:
    """Claim the document's admitted job and record a crash for good, as the stage runner does."""
    from docqueue.db import session_scope
    from docqueue.queue import DocumentQueueService

    job_id = job_of(document_id).id
    with session_scope() as session:
        queue = DocumentQueueService(session)
        claim = queue.claim(job_id, "inspect", "crashed-worker")
        assert claim is not None
        traceback = f'Traceback (most recent call last):\n  File "docqueue/stages/inspect.py", line 1\n{message}'
        queue.mark_failed(claim, message, FailureKind.PERMANENT, traceback=traceback)
    return job_id


def test_operator_finds_a_failed_document_sees_why_retries_it_and_watches_it_complete(procfile, make_user, page):
    base_url = start_web(procfile)
    _, owner_token = make_user("owner@example.com")
    _, operator_token = make_user("ops@example.com", password=PASSWORD, role="operator")
    document_id = upload(
        base_url, owner_token, "minimal-document.pdf", (CORPUS / "pdf" / "minimal-document.pdf").read_bytes()
    )
    wait_until(lambda: job_of(document_id).status == "queued", timeout=30, message="the upload to be admitted")
    job_id = fail_as_a_crashed_worker_would(document_id, "inspect failed: OSError: the storage volume went away")

    log_in(page, base_url, "ops@example.com")
    page.goto(f"{base_url}/admin")
    stats = requests.get(
        f"{base_url}/api/queue/stats", headers={"Authorization": f"Bearer {operator_token}"}, timeout=10
    ).json()
    for name in ("pending", "processing", "failed", "completed_today", "cancelled"):
        expect(page.locator(f'[data-stat="{name}"]')).to_have_text(str(stats[name]))
    assert stats["failed"] == 1
    expect(page.locator("#poll-state")).to_have_text("live")
    shot(page, "admin-dashboard-with-a-failure")

    page.get_by_role("link", name="see why").click()
    group = page.locator("table.failures tbody tr")
    expect(group).to_have_count(1)
    expect(group).to_contain_text("OSError")
    expect(group).to_contain_text("the storage volume went away")
    shot(page, "admin-failures")

    group.get_by_role("link", name="1").click()
    expect(page.locator(f"#job-{job_id}")).to_have_attribute("data-status", "failed")
    # The row leads with the document; the job number comes second.
    expect(page.locator(f"#job-{job_id} .doc-number")).to_have_text(f"doc #{document_id}")
    page.locator(f"#job-{job_id}").get_by_role("link", name="minimal-document.pdf").click()
    expect(page.locator(".flash-error")).to_contain_text("the storage volume went away")
    expect(page.locator("table.timeline")).to_contain_text("crashed-worker")
    page.locator("table.timeline summary", has_text="traceback").click()
    expect(page.locator("table.timeline pre")).to_contain_text("most recent call last")
    shot(page, "admin-job-failed")

    procfile("worker")
    procfile("clock")
    # A crash is a permanent failure: the page says it would fail again, and retries it only "anyway".
    expect(page.locator("#will-fail-again")).to_be_visible()
    page.get_by_label("retry anyway, knowing why it failed").check()
    page.get_by_role("button", name="Retry anyway").click()
    expect(page.locator(".flash-info")).to_have_text("Retried 1 job.")
    page.get_by_role("link", name="All jobs").click()
    # The list polls: the row turns completed without a reload.
    expect(page.locator(f"#job-{job_id}")).to_have_attribute("data-status", "completed", timeout=FINISHED_TIMEOUT_MS)
    shot(page, "admin-jobs-retried-and-completed")

    page.goto(f"{base_url}/admin")
    expect(page.locator('[data-stat="completed_today"]')).to_have_text("1")
    expect(page.locator('[data-stat="failed"]')).to_have_text("0")
    expect(page.locator("table.audit")).to_contain_text("job.retry")
    expect(page.locator(".chart canvas").first).to_be_visible()
    shot(page, "admin-dashboard-after-retry")


def test_cancelling_a_running_job_stops_its_stage_and_frees_the_worker(procfile, make_user, page):
    base_url = start_web(procfile)
    _, owner_token = make_user("owner@example.com", ocr_timeout_seconds=120, concurrent_ocr_jobs=5)
    make_user("ops@example.com", password=PASSWORD, role="operator")
    # One worker thread and one PDF process: the next document can run only once the endless one has stopped.
    worker = procfile("worker", WORKER_THREADS=1, PDF_WORKER_PROCESSES=1)
    procfile("clock")
    endless = upload(base_url, owner_token, "endless.pdf", make_endless_pdf())
    wait_until(
        lambda: (job_of(endless).status, job_of(endless).stage) == ("processing", "extract_text"),
        timeout=60,
        message="the endless document's text extraction to start",
    )
    job_id = job_of(endless).id

    log_in(page, base_url, "ops@example.com")
    page.goto(f"{base_url}/admin")
    # The worker beats every few seconds, busy or idle, and shows its running stage.
    expect(page.locator("table.workers tbody tr")).to_have_count(1, timeout=15_000)
    expect(page.locator("table.workers tbody tr td").nth(1)).to_have_text("1", timeout=15_000)
    page.goto(f"{base_url}/admin/jobs/{job_id}")
    expect(page.locator("#job-status")).to_have_text("processing")
    shot(page, "admin-job-running")
    page.get_by_role("button", name="Cancel").click()
    expect(page.locator(".flash-info")).to_have_text("Cancelled 1 job.")
    expect(page.locator("#job-status")).to_have_text("cancelled")
    shot(page, "admin-job-cancelled")

    # The endless stage would hold the only worker thread for two minutes; the next upload completes now.
    following = upload(
        base_url, owner_token, "minimal-document.pdf", (CORPUS / "pdf" / "minimal-document.pdf").read_bytes()
    )
    wait_until(lambda: job_of(following).status == "completed", timeout=60, message="the next document to complete")
    assert (
        f"job {job_id} (document {endless}) stage extract_text attempt 1 stopped: its lease was taken away"
        in worker.log()
    )
    assert job_of(endless).status == "cancelled"
    from docqueue.db import get_engine

    with get_engine().connect() as connection:
        pages = connection.execute(
            sa.text("SELECT count(*) FROM document_pages WHERE document_id = :d"), {"d": endless}
        )
        assert pages.scalar() == 0
    page.goto(f"{base_url}/admin/documents/{endless}")
    expect(page.locator("h1 .badge")).to_have_text("cancelled")
    shot(page, "admin-document-cancelled")


def test_clearing_old_entries_and_what_a_viewer_may_do(procfile, make_user, page, session):
    base_url = start_web(procfile)
    viewer_id, _ = make_user("viewer@example.com", password=PASSWORD)
    make_user("ops@example.com", password=PASSWORD, role="operator")
    old, recent, failed_a, failed_b = (add_document(session, viewer_id) for _ in range(4))
    # Stage history directly (bypassing the status guard): two jobs completed 40 and 2 days ago.
    session.execute(sa.text("SET session_replication_role = replica"))
    for document_id, days in ((old, 40), (recent, 2)):
        session.execute(
            sa.text(
                "UPDATE document_queue SET status = 'completed', completed_at = now() - make_interval(days => :days) "
                "WHERE document_id = :d"
            ),
            {"d": document_id, "days": days},
        )
    session.execute(
        sa.text(
            "UPDATE document_queue SET status = 'failed', error_message = 'inspect failed: OSError: gone' "
            "WHERE document_id IN (:a, :b)"
        ),
        {"a": failed_a, "b": failed_b},
    )
    session.execute(sa.text("SET session_replication_role = origin"))
    session.commit()
    old_job, recent_job = job_of(old).id, job_of(recent).id

    log_in(page, base_url, "ops@example.com")
    page.goto(f"{base_url}/admin")
    page.on("dialog", lambda dialog: dialog.accept())
    page.get_by_label("Clear completed older than").fill("30")
    page.get_by_role("button", name="Clear").click()
    expect(page.locator(".flash-info")).to_have_text("Cleared 1 completed job older than 30 days.")
    audit_row = page.locator("table.audit tbody tr").first
    expect(audit_row).to_contain_text("queue.clear_completed")
    expect(audit_row).to_contain_text("ops@example.com")
    shot(page, "admin-dashboard-cleared")
    # Retry all failed matching a filter: a preview with the count, then a confirm.
    page.goto(f"{base_url}/admin/jobs?status=failed")
    page.get_by_role("button", name="Retry all failed matching this filter…").click()
    expect(page.locator("#preview-count")).to_contain_text("2 failed jobs match status=failed")
    shot(page, "admin-retry-preview")
    page.get_by_role("button", name="Retry these 2 jobs").click()
    expect(page.locator(".flash-info")).to_have_text("Retried 2 jobs.")
    assert {job_of(failed_a).status, job_of(failed_b).status} <= {"pending", "queued"}
    page.goto(f"{base_url}/admin/jobs")
    expect(page.locator(f"#job-{old_job}")).to_have_count(0)
    expect(page.locator(f"#job-{recent_job}")).to_have_count(1)
    # Polling pauses while rows are selected, and the user can stop it.
    expect(page.locator("#poll-state")).to_have_text("live")
    page.get_by_label(f"Select job {recent_job}").check()
    expect(page.locator("#poll-state")).to_have_text("paused while rows are selected", timeout=5_000)
    page.get_by_label("Refresh interval").select_option("0")
    expect(page.locator("#poll-state")).to_have_text("stopped")
    shot(page, "admin-jobs-selected")
    page.get_by_role("button", name="Log out").click()

    log_in(page, base_url, "viewer@example.com")
    page.goto(f"{base_url}/admin")
    expect(page.locator("h1")).to_have_text("Your jobs")
    expect(page.get_by_role("button", name="Clear")).to_have_count(0)
    expect(page.get_by_role("link", name="Users")).to_have_count(0)
    shot(page, "admin-dashboard-viewer")
    page.goto(f"{base_url}/admin/jobs")
    expect(page.locator(f"#job-{recent_job}")).to_have_count(1)
    expect(page.locator('input[name="job_id"]')).to_have_count(0)
    expect(page.get_by_role("button", name="Retry selected")).to_have_count(0)
    shot(page, "admin-jobs-viewer")
    token = page.locator('meta[name="csrf-token"]').get_attribute("content")
    forbidden = page.request.post(
        f"{base_url}/admin/jobs/action", form={"csrf_token": token, "action": "delete", "job_id": str(recent_job)}
    )
    assert forbidden.status == 403
    no_token = page.request.post(f"{base_url}/admin/jobs/action", form={"action": "delete", "job_id": str(recent_job)})
    assert no_token.status == 400 and "CSRF" in no_token.text()
    assert job_of(recent).status == "completed"
    page.goto(f"{base_url}/admin/users")
    expect(page.locator("h1")).to_have_text("Not allowed")
    shot(page, "admin-users-forbidden-for-viewer")


def test_an_admin_manages_accounts_on_the_page(procfile, make_user, page):
    base_url = start_web(procfile)
    make_user("boss@example.com", password=PASSWORD, role="admin")
    page.goto(f"{base_url}/login")
    shot(page, "login")
    log_in(page, base_url, "boss@example.com")
    page.goto(f"{base_url}/admin/users")
    page.get_by_label("Email").fill("new@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.locator('form.filters select[name="role"]').select_option("operator")
    page.get_by_role("button", name="Create").click()
    expect(page.locator(".flash-token")).to_contain_text("Created new@example.com (operator). API token")
    token = re.search(r"shown this once: (\S+)", page.locator(".flash-token").inner_text()).group(1)
    headers = {"Authorization": f"Bearer {token}"}
    assert requests.get(f"{base_url}/api/queue/stats", headers=headers, timeout=10).status_code == 200
    row = page.locator("tr", has_text="new@example.com")
    row.get_by_label("Jobs at once").fill("7")
    row.get_by_role("button", name="Save").nth(1).click()
    expect(page.locator(".flash-info")).to_have_text("Saved new@example.com's settings.")
    expect(page.locator("tr", has_text="new@example.com").get_by_label("Jobs at once")).to_have_value("7")
    page.locator("tr", has_text="new@example.com").get_by_role("button", name="Disable").click()
    expect(page.locator("tr", has_text="new@example.com")).to_have_attribute("data-disabled", "yes")
    assert requests.get(f"{base_url}/api/queue/stats", headers=headers, timeout=10).status_code == 401
    shot(page, "admin-users")
