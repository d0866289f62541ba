"""Per-user quotas: storage (413 at upload, rejected files at ingest) and pages a day (429 at upload, a clear
failure at `inspect`), shown to the user and set by admins on the web and the command line."""

from __future__ import annotations

import io
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from docqueue.ingest import IngestOptions, ingest_paths
from tests.support.factories import add_document, make_pdf
from tests.support.stages import run_until_settled, stage_record

MB = 1024 * 1024


def auth(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def upload(client, token: str, data: bytes, name: str = "doc.pdf"):
    return client.post(
        "/api/documents",
        data={"file": (io.BytesIO(data), name)},
        headers=auth(token),
        content_type="multipart/form-data",
    )


def padded_pdf(size: int) -> bytes:
    """A one-page PDF of about `size` bytes (random bytes after its end: readers ignore them)."""
    data = make_pdf(["a page"])
    return data + b"\n%" + os.urandom(max(0, size - len(data)))


def count(session, sql: str, **params) -> int:
    session.rollback()
    return session.execute(sa.text(sql), params).scalar()


def test_an_upload_over_the_storage_quota_is_refused_whole_with_the_quota_and_use(client, session, make_user):
    user_id, token = make_user(storage_quota_mb=1)
    first = upload(client, token, padded_pdf(600 * 1024))
    assert first.status_code == 202
    refused = upload(client, token, padded_pdf(600 * 1024), "second.pdf")
    assert refused.status_code == 413
    error = refused.json["error"]
    assert "storage quota of 1.0 MB" in error and "you store 0.6 MB" in error and "nothing was stored" in error
    assert count(session, "SELECT count(*) FROM documents WHERE owner_id = :u", u=user_id) == 1
    assert count(session, "SELECT count(*) FROM document_queue WHERE owner_id = :u", u=user_id) == 1
    stored = count(session, "SELECT count(DISTINCT blob_key) FROM blob_chunks")
    assert stored == 1, "the refused upload's bytes are rolled back with it"
    # What fits still goes in.
    assert upload(client, token, padded_pdf(300 * 1024), "small.pdf").status_code == 202
    # Under an Idempotency-Key the refusal keeps the key free: the same request passes once there is room.
    keyed = {"file": (io.BytesIO(b"%PDF-1.4 " + b"x" * 300 * 1024), "keyed.pdf")}
    headers = {**auth(token), "Idempotency-Key": "quota-1"}
    assert client.post("/api/documents", data=keyed, headers=headers).status_code == 413
    session.execute(sa.text("UPDATE users SET storage_quota_mb = 2 WHERE id = :u"), {"u": user_id})
    session.commit()
    keyed = {"file": (io.BytesIO(b"%PDF-1.4 " + b"x" * 300 * 1024), "keyed.pdf")}
    assert client.post("/api/documents", data=keyed, headers=headers).status_code == 202


def test_me_shows_the_quotas_and_their_use(client, make_user):
    _, token = make_user(daily_page_quota=7)
    assert upload(client, token, padded_pdf(100 * 1024)).status_code == 202
    me = client.get("/api/me", headers=auth(token)).json
    assert me["storage_quota_mb"] == 10_240, "the default, DEFAULT_STORAGE_QUOTA_MB"
    assert 100 * 1024 <= me["storage_used_bytes"] < 110 * 1024
    assert (me["daily_page_quota"], me["pages_today"]) == (7, 0)


@pytest.fixture
def owner_with_pages(make_user, broker):
    return make_user(daily_page_quota=3)


def test_pages_past_the_daily_quota_fail_at_inspect_and_then_uploads_answer_429(client, session, owner_with_pages):
    user_id, token = owner_with_pages
    done = add_document(session, user_id, make_pdf(["one", "two"]))
    assert run_until_settled(session, done).status == "completed"
    assert client.get("/api/me", headers=auth(token)).json["pages_today"] == 2

    over = add_document(session, user_id, make_pdf(["three", "four"]))
    job = run_until_settled(session, over)
    assert (job.status, job.stage) == ("failed", "inspect")
    assert "2 pages would pass your daily page quota of 3 pages (2 processed today)" in job.error_message
    assert "resets at 00:00 UTC" in job.error_message
    assert stage_record(session, job.id, "inspect").attempts == 1, "not retried: it would fail the same way"
    assert client.get("/api/me", headers=auth(token)).json["pages_today"] == 2, "a refused document counts nothing"
    shown = client.get(f"/api/documents/{over}", headers=auth(token)).json
    assert shown["status"] == "failed" and "daily page quota" in shown["error"]

    assert run_until_settled(session, add_document(session, user_id, make_pdf(["five"]))).status == "completed"
    refused = upload(client, token, make_pdf(["six"]))
    assert refused.status_code == 429
    assert "daily page quota of 3 pages is used up (3 pages processed today)" in refused.json["error"]
    assert count(session, "SELECT count(*) FROM documents WHERE owner_id = :u", u=user_id) == 3


def test_ingest_rejects_the_files_over_the_storage_quota_with_the_reason(session, make_user, tmp_path):
    user_id, _ = make_user(storage_quota_mb=1)
    for n in range(3):
        (tmp_path / f"file{n}.pdf").write_bytes(padded_pdf(400 * 1024))
    report = ingest_paths(session, user_id, [str(tmp_path)], IngestOptions.from_settings(source="cli"))
    assert report.progress.added == 2
    (rejection,) = report.rejections
    assert "over your storage quota of 1.0 MB: you store 0.8 MB and this is 0.4 MB more" in rejection.reason
    assert count(session, "SELECT count(*) FROM documents WHERE owner_id = :u", u=user_id) == 2


def test_admins_set_quotas_on_the_users_page_and_the_user_sees_them(no_csrf_app, session, make_user):
    make_user("root@example.com", password="pw-admin-1", role="admin")
    user_id, _ = make_user("quota@example.com", password="pw-user-1")
    admin = no_csrf_app.test_client()
    admin.post("/login", data={"email": "root@example.com", "password": "pw-admin-1"})
    assert 'placeholder="10240"' in admin.get("/admin/users").get_data(as_text=True)
    saved = admin.post(
        f"/admin/users/{user_id}/settings",
        data={
            "concurrent_ocr_jobs": "2",
            "ocr_timeout_seconds": "300",
            "storage_quota_mb": "5",
            "daily_page_quota": "",
        },
    )
    assert saved.status_code == 302
    row = session.execute(sa.text("SELECT storage_quota_mb, daily_page_quota FROM users WHERE id = :u"), {"u": user_id})
    assert tuple(row.one()) == (5, None), "a blank quota follows the default"
    assert (
        admin.post(
            f"/admin/users/{user_id}/settings",
            data={"concurrent_ocr_jobs": "2", "ocr_timeout_seconds": "300", "storage_quota_mb": "-3"},
        ).status_code
        == 400
    )
    detail = count(session, "SELECT detail FROM audit_log WHERE action = 'user.settings' ORDER BY id DESC LIMIT 1")
    assert "storage_quota_mb=5" in detail and "daily_page_quota=default" in detail

    user = no_csrf_app.test_client()
    user.post("/login", data={"email": "quota@example.com", "password": "pw-user-1"})
    page = user.get("/").get_data(as_text=True)
    assert "0.0 MB of your 5 MB quota" in page and "Pages processed today: 0 of 10,000" in page
    form = {"files": [(io.BytesIO(padded_pdf(3 * MB)), "a.pdf"), (io.BytesIO(padded_pdf(3 * MB)), "b.pdf")]}
    refused = user.post("/upload", data=form, content_type="multipart/form-data", follow_redirects=True)
    # In the browser each file is its own upload: the first fits the quota, the second would pass it.
    assert "over your storage quota of 5.0 MB: you store 3.0 MB and this is 3.0 MB more" in refused.get_data(
        as_text=True
    )
    assert count(session, "SELECT count(*) FROM documents WHERE owner_id = :u", u=user_id) == 1


def test_the_user_settings_command_sets_and_shows_quotas(test_env, session, make_user):
    from docqueue.cli import main

    make_user("cli-quota@example.com")
    runner = CliRunner()
    shown = runner.invoke(
        main, ["user", "settings", "cli-quota@example.com", "--storage-quota-mb", "50", "--daily-page-quota", "200"]
    )
    assert shown.exit_code == 0, shown.output
    assert "storage_quota_mb=50 " in shown.output and "daily_page_quota=200 " in shown.output
    reset = runner.invoke(main, ["user", "settings", "cli-quota@example.com", "--storage-quota-mb", "default"])
    assert "storage_quota_mb=10240 (default)" in reset.output
    bad = runner.invoke(main, ["user", "settings", "cli-quota@example.com", "--daily-page-quota", "lots"])
    assert bad.exit_code == 2 and "must be a whole number or 'default'" in bad.output


def test_uploads_racing_for_the_last_of_the_quota_cannot_both_pass_it(app, session, make_user):
    user_id, token = make_user(storage_quota_mb=1)
    barrier = threading.Barrier(4)

    def send(n: int) -> int:
        client = app.test_client()
        data = padded_pdf(400 * 1024)
        barrier.wait()
        return upload(client, token, data, f"racer{n}.pdf").status_code

    with ThreadPoolExecutor(max_workers=4) as pool:
        codes = sorted(pool.map(send, range(4)))
    # 1 MB holds two of the 0.4 MB files, never three, whatever order the four transactions commit in; and
    # the refused ones answer 413, not a deadlock's 503 (seen when the refusal read the row FOR UPDATE).
    assert codes == [202, 202, 413, 413]
    stored = count(session, "SELECT sum(size_bytes) FROM documents WHERE owner_id = :u", u=user_id)
    assert stored == count(session, "SELECT storage_used_bytes FROM users WHERE id = :u", u=user_id) <= MB
