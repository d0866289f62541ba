"""Result callbacks: validated on upload, POSTed when the document ends, signed, retried, visible."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import time

import pytest
import sqlalchemy as sa

from docqueue.callbacks.sender import deliver_due
from tests.support.api import auth
from tests.support.factories import make_pdf
from tests.support.stages import run_until_settled


def upload(client, token: str, data: bytes, **fields):
    return client.post(
        "/api/documents",
        data={"file": (io.BytesIO(data), "doc.pdf"), **fields},
        headers=auth(token),
        content_type="multipart/form-data",
    )


@pytest.mark.parametrize(
    "url, error",
    [
        ("ftp://example.com/hook", "callback_url must start with http:// or https://"),
        ("javascript:alert(1)", "callback_url must start with http:// or https://"),
        ("http:///nohost", "callback_url has no host"),
        ("https://example.com:99999/", "callback_url is not a valid URL"),
    ],
)
def test_a_bad_callback_url_is_refused_and_nothing_is_stored(client, make_user, session, url, error):
    _, token = make_user()
    response = upload(client, token, make_pdf(["x"]), callback_url=url)
    assert (response.status_code, response.json) == (400, {"error": error})
    assert session.execute(sa.text("SELECT count(*) FROM documents")).scalar() == 0


def test_the_callback_is_signed_retried_after_a_500_and_its_attempts_shown(
    client, make_user, session, receiver, monkeypatch
):
    monkeypatch.setenv("CALLBACK_BACKOFF_SECONDS", "0")
    from docqueue.settings import get_settings

    get_settings.cache_clear()
    _, token = make_user()
    receiver.answers = [(500, {}, b"receiver down")]
    response = upload(client, token, make_pdf(["hello"]), callback_url=receiver.url + "/hook")
    assert response.status_code == 202
    document_id = response.json["id"]
    assert run_until_settled(session, document_id).status == "completed"

    assert deliver_due() == 1  # answered 500: pending again
    shown = client.get(f"/api/documents/{document_id}/callbacks", headers=auth(token)).json["callbacks"]
    assert [(c["status"], c["attempts"], c["last_status_code"]) for c in shown] == [("pending", 1, 500)]
    assert deliver_due() == 1  # answered 200: delivered
    assert deliver_due() == 0

    first, second = receiver.requests
    assert first.body == second.body and first.path == "/hook"
    secret = client.get("/api/me/callback", headers=auth(token)).json["secret"]
    timestamp, signed = second.headers["X-Docqueue-Signature"].split(",")
    assert timestamp.startswith("t=") and abs(int(timestamp[2:]) - time.time()) < 300
    expected = hmac.new(secret.encode(), f"{timestamp[2:]}.".encode() + second.body, hashlib.sha256).hexdigest()
    assert signed == f"v1={expected}"
    payload = json.loads(second.body)
    assert (payload["document_id"], payload["status"], payload["error"]) == (document_id, "completed", None)
    shown = client.get(f"/api/documents/{document_id}/callbacks", headers=auth(token)).json["callbacks"]
    assert [(c["status"], c["attempts"], c["last_status_code"]) for c in shown] == [("delivered", 2, 200)]
    get_settings.cache_clear()


def test_a_users_own_callback_url_hears_about_failures(client, make_user, session, receiver):
    _, token = make_user()
    set_url = client.put("/api/me/callback", json={"callback_url": receiver.url + "/mine"}, headers=auth(token))
    assert set_url.status_code == 200 and set_url.json["callback_url"] == receiver.url + "/mine"
    bad = client.put("/api/me/callback", json={"callback_url": "file:///etc/passwd"}, headers=auth(token))
    assert bad.status_code == 400
    document_id = upload(client, token, b"not a pdf at all").json["id"]
    assert run_until_settled(session, document_id).status == "failed"
    assert deliver_due() == 1
    (request,) = receiver.requests
    payload = json.loads(request.body)
    assert (payload["document_id"], payload["status"]) == (document_id, "failed")
    assert payload["error"].startswith("unsupported file type")
    assert request.path == "/mine"


def test_a_run_failed_after_its_worker_died_still_gets_its_callback(make_user, session, receiver):
    from docqueue.callbacks.deliveries import schedule_missed
    from docqueue.queue import DocumentQueueService
    from tests.support.factories import add_document

    user_id, _ = make_user(callback_url=receiver.url + "/late")
    document_id = add_document(session, user_id)
    queue = DocumentQueueService(session)
    (dispatch,) = queue.admit_pending()
    session.execute(sa.text("UPDATE document_queue SET max_attempts = 1 WHERE id = :j"), {"j": dispatch.job_id})
    assert queue.claim(dispatch.job_id, dispatch.stage, "dead-worker") is not None
    # The worker dies: its lease lapses and the dispatcher fails the job, out of attempts.
    session.execute(sa.text("UPDATE document_queue SET lease_expires_at = now() - interval '1 second'"))
    assert queue.recover_stale_jobs().failed == 1
    session.commit()
    assert (schedule_missed(session), schedule_missed(session)) == (1, 0)
    session.commit()
    assert deliver_due() == 1
    payload = json.loads(receiver.requests[0].body)
    assert (payload["document_id"], payload["status"]) == (document_id, "failed")
    assert "stopped responding" in payload["error"]
