"""The JSON API through Flask's test client, on the real database and broker."""

from __future__ import annotations

import io

import sqlalchemy as sa

from tests.support.api import auth, upload
from tests.support.processes import CORPUS, free_port


def test_upload_answers_pending_at_once_and_queues_a_message(client, make_user, session, broker, corpus_truth):
    _, token = make_user()
    response = upload(client, token, (CORPUS / "pdf" / "minimal-document.pdf").read_bytes(), "minimal-document.pdf")
    assert response.status_code == 202
    assert response.json == {"id": response.json["id"], "status": "pending"}
    detail = client.get(f"/api/documents/{response.json['id']}", headers=auth(token)).json
    assert detail["filename"] == "minimal-document.pdf"
    assert detail["sha256"] == corpus_truth["minimal-document.pdf"]["sha256"]
    assert detail["size"] == corpus_truth["minimal-document.pdf"]["bytes"]
    assert {"status", "progress", "page_count", "error", "ocr_status", "ocr_error", "ocr_completed_at"} <= set(detail)
    # The upload woke the dispatcher (after its answer): the job is admitted and its message sits in Redis.
    job = session.execute(sa.text("SELECT status, priority FROM document_queue")).one()
    assert tuple(job) == ("queued", 10)
    assert broker.client.hlen(f"{broker.namespace}:documents.msgs") == 1


def test_api_needs_a_valid_token(client, make_user):
    assert client.get("/api/queue/stats").status_code == 401
    assert client.get("/api/queue/stats", headers=auth("not-a-token")).status_code == 401
    assert (
        client.get("/api/queue/stats", headers={"Authorization": "Basic abc"})
        .json["error"]
        .startswith("missing API token")
    )


def test_users_see_only_their_own_documents(client, make_user):
    _, alice = make_user()
    _, bob = make_user()
    document_id = upload(client, alice).json["id"]
    assert client.get(f"/api/documents/{document_id}", headers=auth(bob)).status_code == 404
    assert client.post(f"/api/documents/{document_id}/reprocess", headers=auth(bob)).status_code == 404
    assert client.get("/api/documents", headers=auth(bob)).json["documents"] == []
    assert [d["id"] for d in client.get("/api/documents", headers=auth(alice)).json["documents"]] == [document_id]


def test_bad_uploads_get_clear_errors_and_store_nothing(client, make_user, session):
    _, token = make_user()
    no_file = client.post("/api/documents", data={}, headers=auth(token), content_type="multipart/form-data")
    assert no_file.status_code == 400 and "multipart form field 'file'" in no_file.json["error"]
    empty = client.post(
        "/api/documents",
        data={"file": (io.BytesIO(b""), "empty.pdf")},
        headers=auth(token),
        content_type="multipart/form-data",
    )
    assert empty.status_code == 400 and empty.json["error"] == "the file is empty"
    assert upload(client, token, priority="high").json["error"] == "priority must be a whole number from 0 to 100"
    assert upload(client, token, priority="101").status_code == 400
    nameless = upload(client, token, filename="")
    assert nameless.status_code == 400
    counts = session.execute(
        sa.text("SELECT (SELECT count(*) FROM documents), (SELECT count(*) FROM blob_chunks)")
    ).one()
    assert tuple(counts) == (0, 0)


def test_upload_over_the_size_limit_is_refused(app, make_user):
    app.config["MAX_CONTENT_LENGTH"] = 1024
    _, token = make_user()
    response = upload(app.test_client(), token, b"%PDF-" + b"x" * 4096)
    assert response.status_code == 413
    assert response.json["error"] == "the upload is larger than the 1024 byte limit (MAX_UPLOAD_MB); nothing was stored"


def test_caller_priority_wins(client, make_user, session):
    _, token = make_user()
    upload(client, token, priority="3")
    assert session.execute(sa.text("SELECT priority FROM document_queue")).scalar() == 3


def test_reprocess_is_refused_while_a_run_is_live(client, make_user):
    _, token = make_user()
    document_id = upload(client, token).json["id"]
    response = client.post(f"/api/documents/{document_id}/reprocess", headers=auth(token))
    assert response.status_code == 409
    assert "already queued or being processed" in response.json["error"]


def test_queue_stats_has_the_specified_fields(client, make_user):
    _, token = make_user()
    upload(client, token)
    stats = client.get("/api/queue/stats", headers=auth(token)).json
    for field in (
        "pending",
        "processing",
        "failed",
        "completed_today",
        "avg_wait_time_minutes",
        "oldest_pending_minutes",
    ):
        assert field in stats
    assert stats["pending"] == 1


def test_queue_control_is_for_admins(client, make_user):
    _, user_token = make_user()
    _, admin_token = make_user(role="admin")
    assert client.post("/api/queue/requeue-failed", headers=auth(user_token)).status_code == 403
    assert client.post("/api/queue/process", headers=auth(user_token)).status_code == 403
    assert client.post("/api/queue/requeue-failed", headers=auth(admin_token)).json == {"requeued": 0, "skipped": []}
    report = client.post("/api/queue/process", headers=auth(admin_token)).json
    assert report["ran"] is True and report["admitted"] == 0


def test_healthz_checks_postgres_and_redis(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok", "checks": {"postgres": "ok", "redis": "ok"}}


def test_uploads_are_accepted_while_redis_is_down_and_dispatched_later(make_user, session, monkeypatch):
    from docqueue.broker import build_broker
    from docqueue.dispatch.dispatcher import process_document_queue
    from docqueue.settings import get_settings
    from web import create_app

    # A Redis that refuses connections: a real socket, nothing listening.
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    get_settings.cache_clear()
    try:
        app = create_app({"TESTING": True})
        client = app.test_client()
        _, token = make_user()
        response = upload(client, token)
        assert response.status_code == 202, "Postgres has the upload: Redis being down must not lose or refuse it"
        assert app.extensions["dispatch_waker"].wait_idle(timeout=10)
        health = client.get("/healthz")
        assert health.status_code == 503 and health.json["checks"]["redis"].startswith("error")
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
    assert session.execute(sa.text("SELECT status FROM document_queue")).scalar() == "queued"

    broker = build_broker()  # Redis is back
    session.execute(sa.text("UPDATE document_queue SET dispatched_at = now() - interval '1 hour'"))
    session.commit()
    report = process_document_queue(session)
    assert (report.redispatched, report.sent) == (1, 1)
    assert broker.client.hlen(f"{broker.namespace}:documents.msgs") == 1


def test_requeue_failed_answers_what_it_skipped_and_why(client, make_user, session):
    from tests.support.queue import document_row, failed_both_ways

    _, admin_token = make_user(role="admin")
    unsupported, timed_out = failed_both_ways(session, make_user()[0])
    answer = client.post("/api/queue/requeue-failed", headers=auth(admin_token))
    assert answer.status_code == 200
    assert answer.json == {"requeued": 1, "skipped": [{"reason": "unsupported file type", "documents": 1}]}
    session.rollback()
    assert (document_row(session, timed_out).status, document_row(session, unsupported).status) == ("pending", "failed")


def test_a_failed_stage_is_logged_with_its_job_and_its_document(client, make_user, session, procfile):
    """The user knows the document, the operator the job: the worker's log line names both."""
    from tests.support.processes import wait_until

    _, token = make_user()
    worker = procfile("worker", WORKER_THREADS=1, PDF_WORKER_PROCESSES=1)
    document_id = upload(client, token, b"plain text, not a document type we read", "notes.pdf").json["id"]

    def failed_job():
        session.rollback()
        return session.execute(
            sa.text("SELECT id FROM document_queue WHERE document_id = :id AND status = 'failed'"), {"id": document_id}
        ).scalar()

    job_id = wait_until(failed_job, timeout=60, message="the unreadable upload to fail")
    wait_until(lambda: f"job {job_id} (document {document_id}) stage inspect attempt 1 failed" in worker.log(), 10)
