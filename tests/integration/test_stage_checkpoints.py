"""Stage checkpoints: batches commit as they fill, a retry resumes after the last committed one, a lost lease writes nothing."""

from __future__ import annotations

import dataclasses

import pymupdf
import pytest
import sqlalchemy as sa

from docqueue.jobs import LeaseLost
from docqueue.queue import DocumentQueueService, run_outputs
from docqueue.results.pages import page_texts
from docqueue.runtime.worker_identity import current_worker_id
from docqueue.stages import checkpoints, chunk, extract_images, extract_text
from docqueue.statuses import FailureKind
from tests.support.factories import add_document, make_pdf
from tests.support.stage_records import admit, claim_next, inspect_alone, page_versions, records
from tests.support.stages import process


def test_a_retried_stage_resumes_after_its_last_committed_batch(session, owner, monkeypatch):
    pages = [f"page {n}" for n in range(1, 121)]
    document_id = add_document(session, owner, make_pdf(pages))
    inspect_alone(session, document_id, monkeypatch)
    # The first attempt at extract_text commits one batch, then its worker is lost (a transient failure).
    claim = claim_next(session, document_id)
    assert claim.stage == "extract_text"
    extract_text._write_pages(claim, [(n, f"page {n}", False, None) for n in range(1, 51)], 120)
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


def test_progress_moves_forward_with_committed_pages(session, owner, monkeypatch):
    document_id = add_document(session, owner, make_pdf([f"p{n}" for n in range(1, 101)]))
    inspect_alone(session, document_id, monkeypatch)
    after_inspect = session.execute(
        sa.text("SELECT progress FROM documents WHERE id = :d"), {"d": document_id}
    ).scalar()
    claim = claim_next(session, document_id)
    extract_text._write_pages(claim, [(n, f"p{n}", False, None) for n in range(1, 51)], 100)
    halfway = session.execute(sa.text("SELECT progress FROM documents WHERE id = :d"), {"d": document_id}).scalar()
    assert after_inspect < halfway < 100
    # A report of fewer units (a smaller total) never moves progress back.
    extract_text._write_pages(claim, [(51, "p51", False, None)], 1000)
    assert (
        session.execute(sa.text("SELECT progress FROM documents WHERE id = :d"), {"d": document_id}).scalar() == halfway
    )


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
        extract_text._write_pages(claim, [(1, "one", False, None), (2, "two", False, None)], 2)
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
    assert extract_text.run(str(tmp_path / "doc.pdf"), claim).page_count == 12
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
    claim = queue.claim(job_id, "extract_images", current_worker_id())
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
    retry = queue.claim(job_id, "extract_images", current_worker_id())
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
