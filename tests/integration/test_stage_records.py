"""Per-stage records and run-keyed outputs, through `run_stage` and the real PDF pool, and as the API shows them."""

from __future__ import annotations

import io

import sqlalchemy as sa

from docqueue.pipeline import PIPELINE, STAGE_NAMES
from docqueue.queue import DocumentQueueService, run_outputs
from docqueue.results.pages import page_texts, result_pages
from docqueue.runtime.worker_identity import current_worker_id
from docqueue.stages import extract_text
from docqueue.statuses import FailureKind
from docqueue.worker.stage_runner import run_stage
from tests.support.factories import add_document, make_pdf
from tests.support.stage_records import admit, claim_next, inspect_alone, job_for_newest, records
from tests.support.stages import job_for, process


def test_every_stage_of_a_run_has_a_record_with_units(session, owner):
    document_id = add_document(session, owner, make_pdf(["one", "", "three"]))
    process(session, document_id)
    job = job_for(session, document_id)
    recorded = records(session, job.id)
    assert list(recorded) == [stage.name for stage in PIPELINE]
    text_record = recorded["extract_text"]
    assert (text_record.status, text_record.attempts, text_record.unit) == ("completed", 1, "pages")
    assert (text_record.units_done, text_record.units_total, text_record.checkpoint) == (3, 3, 3)
    assert all(record.started_at <= record.finished_at for record in recorded.values() if record.status == "completed")
    assert recorded["inspect"].status == "completed"


def test_one_message_carries_a_document_through_every_stage_of_its_lane(session, owner, ai_settings):
    ai_settings(SMALL_DOCUMENT_MAX_BYTES=0)  # stage by stage, as a document too large for the one pass runs
    document_id = add_document(session, owner, make_pdf(["first page words", "second page words"]))
    job_id = admit(session, document_id)
    # The inspect message's worker goes on with each stage itself to the end, skipping those with nothing
    # to do (the AI stages are not configured here).
    assert run_stage("inspect", job_id) == "done"
    job = job_for_newest(session, document_id)
    assert (job.status, job.stage, job.lease_token) == ("completed", "chunk", None)
    recorded = records(session, job_id)
    assert {stage: record.status for stage, record in recorded.items()} == {
        "inspect": "completed",
        "extract_text": "completed",
        "ocr": "skipped",
        "searchable_pdf": "skipped",
        "extract_images": "completed",
        "chunk": "completed",
        "embed": "skipped",
        "enrich": "skipped",
    }
    assert recorded["ocr"].error == "every page has a text layer: nothing for OCR to read"
    attempts = session.execute(
        sa.text(
            "SELECT stage, attempt, worker_id, lease_token, outcome FROM stage_attempts WHERE job_id = :j ORDER BY id"
        ),
        {"j": job_id},
    ).all()
    assert [(a.stage, a.attempt, a.outcome) for a in attempts] == [
        (stage, 1, "succeeded") for stage in ("inspect", "extract_text", "extract_images", "chunk")
    ]
    assert {a.worker_id for a in attempts} == {current_worker_id()}
    assert len({a.lease_token for a in attempts}) == 4, "each stage is claimed with its own fencing token"
    # A message for a stage the worker went on with (a duplicate, a re-send) finds nothing to claim.
    assert run_stage("extract_text", job_id) == "dropped"


def test_a_failed_stage_is_recorded_with_its_error_and_later_stages_stay_pending(session, owner):
    document_id = add_document(session, owner, b"just some notes\n" * 10)
    process(session, document_id)
    recorded = records(session, job_for(session, document_id).id)
    assert recorded["inspect"].status == "failed"
    assert recorded["inspect"].error.startswith("unsupported file type")
    assert recorded["extract_text"].status == "pending"


def test_reprocess_replaces_outputs_only_when_the_new_run_completes(session, owner, monkeypatch):
    document_id = add_document(session, owner, make_pdf(["one", "two"]))
    process(session, document_id)
    first_run = job_for(session, document_id).id
    DocumentQueueService(session).enqueue(document_id, STAGE_NAMES, "reprocess")
    session.commit()
    inspect_alone(session, document_id, monkeypatch)
    claim = claim_next(session, document_id)
    extract_text._write_pages(claim, [(1, "one", False, None)], 2)
    # Mid-run, and after the new run fails: readers see the old run's pages, all of them, as complete.
    assert run_outputs.results_run(session, document_id) == run_outputs.ResultsRun(first_run, True)
    assert {page.job_id for page in result_pages(session, document_id)} == {first_run}
    DocumentQueueService(session).mark_failed(claim, "broken", FailureKind.PERMANENT)
    session.commit()
    assert page_texts(session, document_id) == [(1, "one"), (2, "two")]
    assert {page.job_id for page in result_pages(session, document_id)} == {first_run}

    DocumentQueueService(session).enqueue(document_id, STAGE_NAMES, "reprocess")
    session.commit()
    process(session, document_id)
    last_run = job_for_newest(session, document_id).id
    assert run_outputs.results_run(session, document_id) == run_outputs.ResultsRun(last_run, True)
    assert page_texts(session, document_id) == [(1, "one"), (2, "two")]
    stored_runs = (
        session.execute(
            sa.text("SELECT DISTINCT job_id FROM document_pages WHERE document_id = :d"), {"d": document_id}
        )
        .scalars()
        .all()
    )
    assert stored_runs == [last_run], "the older runs' pages must be gone"


def auth(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def test_api_lists_stage_records_and_pages_pages(client, make_user, session):
    _, token = make_user()
    pages = [f"page {n}" for n in range(1, 8)]
    response = client.post(
        "/api/documents",
        data={"file": (io.BytesIO(make_pdf(pages)), "seven.pdf")},
        headers=auth(token),
        content_type="multipart/form-data",
    )
    document_id = response.json["id"]
    running = client.get(f"/api/documents/{document_id}/pages", headers=auth(token)).json
    assert (running["complete"], running["pages"], running["next"]) == (False, [], None)
    process(session, document_id)

    detail = client.get(f"/api/documents/{document_id}", headers=auth(token)).json
    assert (detail["status"], detail["progress"]) == ("completed", 100)
    statuses = [(s["stage"], s["status"]) for s in detail["stages"]]
    # Every page has text: OCR and the searchable PDF have nothing to do, and say so; so do the AI
    # stages without EMBEDDINGS_PROVIDER and CHAT_BASE_URL.
    assert statuses == [
        ("inspect", "completed"),
        ("extract_text", "completed"),
        ("ocr", "skipped"),
        ("searchable_pdf", "skipped"),
        ("extract_images", "completed"),
        ("chunk", "completed"),
        ("embed", "skipped"),
        ("enrich", "skipped"),
    ]
    assert detail["stages"][2]["error"].startswith("every page has a text layer")
    extract = detail["stages"][1]
    assert (extract["unit"], extract["units_done"], extract["units_total"]) == ("pages", 7, 7)
    assert extract["duration_seconds"] >= 0
    assert detail["results"]["complete"] is True

    seen, url = [], f"/api/documents/{document_id}/pages?limit=3"
    while url:
        answer = client.get(url, headers=auth(token)).json
        assert len(answer["pages"]) <= 3
        seen += answer["pages"]
        url = answer["next"]
    assert seen == [{"page": n, "text": f"page {n}", "ocr": False, "note": None} for n in range(1, 8)]
    bad = client.get(f"/api/documents/{document_id}/pages?limit=lots", headers=auth(token))
    assert bad.status_code == 400 and bad.json["error"].startswith("limit must be a whole number")
    too_many = client.get(f"/api/documents/{document_id}/pages?limit=5000", headers=auth(token))
    assert too_many.status_code == 400 and "from 1 to 1000, got 5000" in too_many.json["error"]
    whole = client.get(f"/api/documents/{document_id}/pages?limit=1000", headers=auth(token)).json
    assert len(whole["pages"]) == 7 and whole["next"] is None


def test_a_run_that_failed_part_way_shows_its_pages_marked_incomplete(app, make_user, session, monkeypatch):
    owner, token = make_user("partial@example.com", password="pw")
    document_id = add_document(session, owner, make_pdf([f"page {n}" for n in range(1, 121)]))
    inspect_alone(session, document_id, monkeypatch)
    claim = claim_next(session, document_id)
    extract_text._write_pages(claim, [(n, f"page {n}", False, None) for n in range(1, 51)], 120)
    DocumentQueueService(session).mark_failed(claim, "page 51 is damaged and cannot be read", FailureKind.PERMANENT)
    session.commit()

    client = app.test_client()
    answer = client.get(f"/api/documents/{document_id}/pages?limit=1000", headers=auth(token)).json
    assert answer["complete"] is False, "50 of 120 pages must not pass for the document's text"
    assert [page["page"] for page in answer["pages"]] == list(range(1, 51))
    detail = client.get(f"/api/documents/{document_id}", headers=auth(token)).json
    assert detail["results"] == {"run": claim.job_id, "complete": False}
    assert [(s["stage"], s["status"]) for s in detail["stages"]][:2] == [
        ("inspect", "completed"),
        ("extract_text", "failed"),
    ]

    app.config.update(WTF_CSRF_ENABLED=False)
    assert client.post("/login", data={"email": "partial@example.com", "password": "pw"}).status_code == 302
    page = client.get(f"/documents/{document_id}").get_data(as_text=True)
    assert "Incomplete: these pages come from a run that has not finished" in page
    assert "page 51 is damaged and cannot be read" in page
    assert 'hx-trigger="every 2s"' not in page, "a failed document must not poll"
    assert client.get(f"/documents/{document_id}/searchable.pdf").status_code == 404
    make_user("nosy@example.com", password="pw2")
    client.post("/logout")
    client.post("/login", data={"email": "nosy@example.com", "password": "pw2"})
    assert client.get(f"/documents/{document_id}").status_code == 404
