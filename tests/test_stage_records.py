"""Per-stage records, checkpoints and run-keyed outputs, through `run_stage` and the real PDF pool."""

from __future__ import annotations

import dataclasses
import io

import pymupdf
import pytest
import sqlalchemy as sa

from docqueue import stage_runner
from docqueue.documents import page_texts, result_pages
from docqueue.pipeline import PIPELINE
from docqueue.queue import DocumentQueueService, LeaseLost, run_outputs
from docqueue.stage_runner import run_stage
from docqueue.stages import checkpoints, chunk, extract_images, extract_text
from docqueue.statuses import FailureKind
from docqueue.worker_identity import current_worker_id
from tests.factories import add_document, make_pdf
from tests.test_stages import job_for, process


@pytest.fixture
def owner(make_user):
    return make_user()[0]


def records(session, job_id: int) -> dict[str, sa.Row]:
    rows = session.execute(
        sa.text("SELECT * FROM document_stage_records WHERE job_id = :j ORDER BY position"), {"j": job_id}
    ).all()
    return {row.stage: row for row in rows}


def admit(session, document_id: int) -> int:
    """Admit the document's pending job; return its id."""
    DocumentQueueService(session).admit_pending()
    session.commit()
    return job_for_newest(session, document_id).id


def claim_next(session, document_id: int):
    """Admit the document's job and claim its current stage here, as a worker would."""
    admit(session, document_id)
    job = job_for_newest(session, document_id)
    claim = DocumentQueueService(session).mark_in_progress(job.id, job.stage, current_worker_id())
    session.commit()
    assert claim is not None
    return claim


def job_for_newest(session, document_id: int) -> sa.Row:
    return session.execute(
        sa.text("SELECT * FROM document_queue WHERE document_id = :d ORDER BY id DESC LIMIT 1"), {"d": document_id}
    ).one()


def inspect_alone(session, document_id: int, monkeypatch) -> None:
    """Run only the inspect stage of the document's admitted job, as a worker that is shutting down does:
    it hands the job on to `extract_text` by message instead of going on with it."""
    with monkeypatch.context() as patch:
        patch.setattr(stage_runner, "goes_on", lambda stage, following: False)
        assert run_stage("inspect", admit(session, document_id)) == "done"
    assert job_for_newest(session, document_id).stage == "extract_text"


def page_versions(session, job_id: int) -> dict[int, str]:
    """Each page row's xmin: it changes whenever the row is rewritten."""
    rows = session.execute(
        sa.text("SELECT page_number, xmin::text FROM document_pages WHERE job_id = :j"), {"j": job_id}
    ).all()
    return dict(rows)


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


def test_one_message_carries_a_document_through_every_stage_of_its_lane(session, owner):
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


def test_a_retried_stage_resumes_after_its_last_committed_batch(session, owner, monkeypatch):
    pages = [f"page {n}" for n in range(1, 121)]
    document_id = add_document(session, owner, make_pdf(pages))
    inspect_alone(session, document_id, monkeypatch)
    # The first attempt at extract_text commits one batch, then its worker is lost (a transient failure).
    claim = claim_next(session, document_id)
    assert claim.stage == "extract_text"
    extract_text._write_pages(claim, [(n, f"page {n}", False) for n in range(1, 51)], 120)
    first_batch = page_versions(session, claim.job_id)
    DocumentQueueService(session).mark_failed(claim, "worker lost", FailureKind.TRANSIENT)
    session.execute(sa.text("UPDATE document_queue SET run_after = now() WHERE id = :j"), {"j": claim.job_id})
    session.commit()
    partial = records(session, claim.job_id)["extract_text"]
    assert (partial.status, partial.checkpoint, partial.units_done, partial.error) == ("pending", 50, 50, "worker lost")

    document = process(session, document_id)
    assert document.status == "completed", document.error
    record = records(session, claim.job_id)["extract_text"]
    assert (record.status, record.attempts, record.checkpoint) == ("completed", 2, 120)
    assert (record.units_done, record.units_total) == (120, 120)
    after = page_versions(session, claim.job_id)
    assert {page: after[page] for page in first_batch} == first_batch, "pages of the committed batch were rewritten"
    assert page_texts(session, document_id) == [(n, f"page {n}") for n in range(1, 121)]


def test_reprocess_replaces_outputs_only_when_the_new_run_completes(session, owner, monkeypatch):
    document_id = add_document(session, owner, make_pdf(["one", "two"]))
    process(session, document_id)
    first_run = job_for(session, document_id).id
    DocumentQueueService(session).enqueue(document_id, "inspect", "reprocess")
    session.commit()
    inspect_alone(session, document_id, monkeypatch)
    claim = claim_next(session, document_id)
    extract_text._write_pages(claim, [(1, "one", False)], 2)
    # Mid-run, and after the new run fails: readers see the old run's pages, all of them, as complete.
    assert run_outputs.results_run(session, document_id) == run_outputs.ResultsRun(first_run, True)
    assert {page.job_id for page in result_pages(session, document_id)} == {first_run}
    DocumentQueueService(session).mark_failed(claim, "broken", FailureKind.PERMANENT)
    session.commit()
    assert page_texts(session, document_id) == [(1, "one"), (2, "two")]
    assert {page.job_id for page in result_pages(session, document_id)} == {first_run}

    DocumentQueueService(session).enqueue(document_id, "inspect", "reprocess")
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


def test_progress_moves_forward_with_committed_pages(session, owner, monkeypatch):
    document_id = add_document(session, owner, make_pdf([f"p{n}" for n in range(1, 101)]))
    inspect_alone(session, document_id, monkeypatch)
    after_inspect = session.execute(
        sa.text("SELECT progress FROM documents WHERE id = :d"), {"d": document_id}
    ).scalar()
    claim = claim_next(session, document_id)
    extract_text._write_pages(claim, [(n, f"p{n}", False) for n in range(1, 51)], 100)
    halfway = session.execute(sa.text("SELECT progress FROM documents WHERE id = :d"), {"d": document_id}).scalar()
    assert after_inspect < halfway < 100
    # A report of fewer units (a smaller total) never moves progress back.
    extract_text._write_pages(claim, [(51, "p51", False)], 1000)
    assert (
        session.execute(sa.text("SELECT progress FROM documents WHERE id = :d"), {"d": document_id}).scalar() == halfway
    )


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
    assert seen == [{"page": n, "text": f"page {n}", "ocr": False} for n in range(1, 8)]
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
    extract_text._write_pages(claim, [(n, f"page {n}", False) for n in range(1, 51)], 120)
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


def test_a_batch_whose_lease_is_gone_writes_nothing(session, owner, monkeypatch):
    document_id = add_document(session, owner, make_pdf(["one", "two"]))
    inspect_alone(session, document_id, monkeypatch)
    claim = claim_next(session, document_id)
    # Another attempt took the job over (recovery gave it a new lease) while this one was reading.
    session.execute(
        sa.text("UPDATE document_queue SET lease_token = gen_random_uuid() WHERE id = :j"), {"j": claim.job_id}
    )
    session.commit()
    with pytest.raises(LeaseLost):
        extract_text._write_pages(claim, [(1, "one", False), (2, "two", False)], 2)
    assert page_versions(session, claim.job_id) == {}
    record = records(session, claim.job_id)["extract_text"]
    assert (record.units_done, record.checkpoint) == (0, 0)


def test_text_and_chunks_commit_batch_by_batch_when_a_batch_fills(session, owner, monkeypatch, tmp_path):
    pages = [f"page {n} " + "words " * 40 for n in range(1, 13)]
    data = make_pdf(pages)
    document_id = add_document(session, owner, data)
    inspect_alone(session, document_id, monkeypatch)
    claim = claim_next(session, document_id)
    (tmp_path / "doc.pdf").write_bytes(data)
    # Each page, then each chunk, fills a batch: twelve commits of text, one per chunk after.
    monkeypatch.setattr(extract_text, "TEXT_BATCH_CHARS", 1)
    monkeypatch.setattr(chunk, "CHUNK_BATCH_CHARS", 1)
    committed = []
    real_batch = checkpoints.committing_batch

    def counted_batch(claim, **kwargs):
        committed.append((claim.stage, kwargs["checkpoint"]))
        return real_batch(claim, **kwargs)

    monkeypatch.setattr(extract_text, "committing_batch", counted_batch)
    monkeypatch.setattr(chunk, "committing_batch", counted_batch)
    assert extract_text.run(str(tmp_path / "doc.pdf"), claim) == 12
    assert committed == [("extract_text", n) for n in range(1, 13)]
    record = records(session, claim.job_id)["extract_text"]
    assert (record.units_done, record.units_total, record.checkpoint) == (12, 12, 12)

    session.execute(
        sa.text("UPDATE document_stage_records SET status = 'running' WHERE job_id = :j AND stage = 'chunk'"),
        {"j": claim.job_id},
    )
    session.commit()
    chunk_claim = dataclasses.replace(claim, stage="chunk")
    summary = chunk.run(None, chunk_claim)
    chunk_commits = [checkpoint for stage, checkpoint in committed if stage == "chunk"]
    assert chunk_commits == [*range(1, summary.chunks + 1), summary.chunks], "one per chunk, then the last count"
    seqs = session.execute(
        sa.text("SELECT seq FROM document_chunks WHERE job_id = :j ORDER BY seq"), {"j": claim.job_id}
    )
    assert seqs.scalars().all() == list(range(1, summary.chunks + 1))
    record = records(session, claim.job_id)["chunk"]
    assert (record.units_done, record.units_total, record.checkpoint) == (
        summary.chunks,
        summary.chunks,
        summary.chunks,
    )


def image_png(color: tuple[int, int, int]) -> bytes:
    pixmap = pymupdf.Pixmap(pymupdf.csRGB, pymupdf.IRect(0, 0, 16, 16), False)
    pixmap.set_rect(pixmap.irect, color)
    return pixmap.tobytes("png")


def repeating_images_pdf() -> bytes:
    """Five pages: images A, B, A again (the same object), B's bytes in an object of their own, C."""
    where = pymupdf.Rect(72, 100, 172, 200)
    document = pymupdf.open()
    first = document.new_page().insert_image(where, stream=image_png((255, 0, 0)))
    document.new_page().insert_image(where, stream=image_png((0, 255, 0)))
    document.new_page().insert_image(where, xref=first)
    other = pymupdf.open()
    other.new_page().insert_image(where, stream=image_png((0, 255, 0)))
    document.insert_pdf(other)
    document.new_page().insert_image(where, stream=image_png((0, 0, 255)))
    return document.tobytes()


def test_a_retried_image_extraction_stores_no_object_or_bytes_twice(session, owner, monkeypatch, tmp_path):
    data = repeating_images_pdf()
    document_id = add_document(session, owner, data)
    job_id = admit(session, document_id)
    session.execute(sa.text("UPDATE document_queue SET stage = 'extract_images' WHERE id = :j"), {"j": job_id})
    session.commit()
    queue = DocumentQueueService(session)
    claim = queue.mark_in_progress(job_id, "extract_images", current_worker_id())
    session.commit()
    path = tmp_path / "doc.pdf"
    path.write_bytes(data)
    # Every two pages fill a batch; the first attempt is lost before its second batch commits.
    monkeypatch.setattr(extract_images, "IMAGE_BATCH_BYTES", 1)
    real_batch = extract_images.committing_batch
    batches = []

    def lost_after_one_batch(claim, **kwargs):
        if batches:
            raise RuntimeError("worker lost")
        batches.append(kwargs["checkpoint"])
        return real_batch(claim, **kwargs)

    monkeypatch.setattr(extract_images, "committing_batch", lost_after_one_batch)
    with pytest.raises(RuntimeError):
        extract_images.run(str(path), claim)
    assert (batches, records(session, job_id)["extract_images"].checkpoint) == ([2], 2)
    queue.mark_failed(claim, "worker lost", FailureKind.TRANSIENT)
    session.execute(sa.text("UPDATE document_queue SET run_after = now() WHERE id = :j"), {"j": job_id})
    session.commit()

    # The retry goes on from page 3: page 3 shows page 1's object, page 4 the bytes page 2 stored.
    monkeypatch.setattr(extract_images, "committing_batch", real_batch)
    queue.admit_pending()
    retry = queue.mark_in_progress(job_id, "extract_images", current_worker_id())
    session.commit()
    assert retry.attempt == 2
    extract_images.run(str(path), retry)
    images = session.execute(
        sa.text("SELECT page_number, sha256 FROM document_images WHERE job_id = :j ORDER BY page_number"), {"j": job_id}
    ).all()
    assert [image.page_number for image in images] == [1, 2, 4, 5]
    assert images[1].sha256 == images[2].sha256
    blobs = session.execute(
        sa.text("SELECT blob_key, count(*) FROM blob_chunks WHERE blob_key LIKE :k GROUP BY blob_key"),
        {"k": f"{run_outputs.run_blob_prefix(document_id, job_id)}images/%"},
    ).all()
    assert sorted(key.rsplit("/", 1)[1] for key, _ in blobs) == sorted({image.sha256 for image in images})
    record = records(session, job_id)["extract_images"]
    assert (record.units_done, record.units_total, record.checkpoint) == (5, 5, 5)
