"""Optional stages: a failure after the text is stored costs only that stage, which can be retried alone;
a failed document can be retried from the stage that failed.

Stages run through `run_stage` in this process, as the worker would; the
chat service is a real local HTTP server (tests/support/service_stub.py).
"""

from __future__ import annotations

import sqlalchemy as sa

from tests.support.api import auth
from tests.support.factories import add_document, make_pdf
from tests.support.hostile_files import make_slow_pdf
from tests.support.service_stub import chat_answer
from tests.support.stages import settle


def counts(session, document_id: int) -> dict:
    return {
        table: session.execute(
            sa.text(f"SELECT count(*) FROM {table} WHERE document_id = :d"), {"d": document_id}
        ).scalar()
        for table in ("document_pages", "document_chunks", "document_enrichments")
    }


def test_a_chat_api_answering_500_completes_the_document_and_the_stage_is_retried_alone(
    session,
    make_user,
    client,
    ai_settings,  # noqa: F811
    stub,  # noqa: F811
):
    ai_settings(
        CHAT_BASE_URL=stub.url + "/v1", CHAT_API_KEY="k", AI_MAX_TRIES=2, AI_RETRY_BACKOFF_MS=10, MAX_ATTEMPTS=2
    )
    stub.default = (500, {}, b"down")
    owner, token = make_user()
    document_id = add_document(session, owner, make_pdf(["a page about one widget", "and a gadget"]))

    job = settle(session, document_id)
    assert job.status == "completed", job.error_message
    detail = client.get(f"/api/documents/{document_id}", headers=auth(token)).json
    assert (detail["status"], detail["error"], detail["progress"]) == ("completed", None, 100)
    enrich = next(stage for stage in detail["stages"] if stage["stage"] == "enrich")
    assert (enrich["status"], enrich["attempts"]) == ("failed", 2)
    assert enrich["error"] == "the chat provider failed 2 tries (it answered HTTP 500)"
    assert "retrying" not in enrich["error"], "nothing will retry it: it must not say so"
    assert detail["warnings"] == [{"stage": "enrich", "error": enrich["error"]}]
    assert {s["stage"]: s["status"] for s in detail["stages"]}["chunk"] == "completed"
    before = counts(session, document_id)
    assert before["document_pages"] == 2 and before["document_chunks"] >= 1 and before["document_enrichments"] == 0

    # The service recovers; the owner retries the stage alone.
    stub.default = (200, {}, chat_answer("widgets: 1"))
    answer = client.post(f"/api/documents/{document_id}/stages/enrich/retry", headers=auth(token))
    assert answer.status_code == 202 and answer.json == {"id": document_id, "status": "pending", "stage": "enrich"}
    assert client.get(f"/api/documents/{document_id}", headers=auth(token)).json["status"] == "pending"
    again = settle(session, document_id)
    assert (again.id, again.status, again.stage) == (job.id, "completed", "enrich"), "the same run, completed again"
    detail = client.get(f"/api/documents/{document_id}", headers=auth(token)).json
    assert detail["warnings"] == [] and detail["results"] == {"run": job.id, "complete": True}
    records = {s["stage"]: (s["status"], s["attempts"]) for s in detail["stages"]}
    assert records["enrich"] == ("completed", 3)
    assert records["extract_text"] == ("completed", 1) and records["chunk"] == ("completed", 1), "nothing else redone"
    after = counts(session, document_id)
    assert after["document_pages"] == before["document_pages"] and after["document_chunks"] == before["document_chunks"]
    assert after["document_enrichments"] >= 1

    # Nothing failed now: a second retry is refused, and so is one of a stage that is not optional or unknown.
    refused = client.post(f"/api/documents/{document_id}/stages/enrich/retry", headers=auth(token))
    assert refused.status_code == 409 and "has not failed" in refused.json["error"]
    not_optional = client.post(f"/api/documents/{document_id}/stages/inspect/retry", headers=auth(token))
    assert not_optional.status_code == 409 and "not optional" in not_optional.json["error"]
    unknown = client.post(f"/api/documents/{document_id}/stages/polish/retry", headers=auth(token))
    assert unknown.status_code == 404 and unknown.json == {"error": "no stage 'polish'"}
    _, stranger = make_user()
    assert client.post(f"/api/documents/{document_id}/stages/enrich/retry", headers=auth(stranger)).status_code == 404


def test_a_failed_document_shows_what_will_not_run_and_is_retried_from_its_failed_stage(
    session,
    make_user,
    client,
    app,
    ai_settings,  # noqa: F811
):
    ai_settings(DISCOVERY_TIME_LIMIT_SECONDS=1)
    owner, token = make_user("failed@example.com", password="pw")
    document_id = add_document(session, owner, make_slow_pdf(3_000_000))

    job = settle(session, document_id)
    assert (job.status, job.stage) == ("failed", "extract_text")
    detail = client.get(f"/api/documents/{document_id}", headers=auth(token)).json
    assert detail["error"] == "extract_text stopped after the 1 s time limit"
    statuses = {s["stage"]: s["status"] for s in detail["stages"]}
    assert statuses["inspect"] == "completed" and statuses["extract_text"] == "failed"
    later = [s for s in detail["stages"] if s["stage"] not in ("inspect", "extract_text")]
    assert later and all(s["status"] == "not_run" for s in later), later
    assert later[0]["error"] == "not run: the document failed at extract_text"
    assert detail["warnings"] == []

    # Its page says what failed, what will never run, and offers what can be done.
    app.config.update(WTF_CSRF_ENABLED=False)
    browser = app.test_client()
    assert browser.post("/login", data={"email": "failed@example.com", "password": "pw"}).status_code == 302
    page = browser.get(f"/documents/{document_id}").get_data(as_text=True)
    assert ">Retry from extract text</button>" in page and ">Reprocess</button>" in page
    assert page.count('data-status="not_run"') == len(later)
    assert "OCR: not run" in page and "No text yet" not in page

    ai_settings(DISCOVERY_TIME_LIMIT_SECONDS=300)
    answer = client.post(f"/api/documents/{document_id}/retry", headers=auth(token))
    assert answer.status_code == 202 and answer.json["stage"] == "extract_text"
    again = settle(session, document_id)
    assert (again.id, again.status) == (job.id, "completed")
    detail = client.get(f"/api/documents/{document_id}", headers=auth(token)).json
    records = {s["stage"]: (s["status"], s["attempts"]) for s in detail["stages"]}
    assert records["inspect"] == ("completed", 1), "the stage before the failure is not redone"
    assert records["extract_text"] == ("completed", 2)
    assert client.post(f"/api/documents/{document_id}/retry", headers=auth(token)).status_code == 409
    page = browser.get(f"/documents/{document_id}").get_data(as_text=True)
    assert "Retry from" not in page and ">Reprocess</button>" in page


def test_a_document_refused_at_inspect_says_why_it_has_no_text(session, make_user, app):
    owner, _ = make_user("refused@example.com", password="pw")
    document_id = add_document(session, owner, b"plain text, not a PDF\n")
    job = settle(session, document_id)
    assert (job.status, job.stage) == ("failed", "inspect")

    app.config.update(WTF_CSRF_ENABLED=False)
    browser = app.test_client()
    assert browser.post("/login", data={"email": "refused@example.com", "password": "pw"}).status_code == 302
    page = browser.get(f"/documents/{document_id}").get_data(as_text=True)
    assert "No text: the document failed at stage inspect before any text was stored." in page
    assert "No text yet" not in page and "OCR: not run" in page
    assert page.count('data-status="not_run"') == 7, "every stage after inspect will never run"
    assert ">Retry from inspect</button>" in page and ">Reprocess</button>" in page
