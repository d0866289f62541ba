"""OCR through the real Procfile processes: a worker killed mid-OCR resumes after its last committed batch."""

from __future__ import annotations

import sqlalchemy as sa

from tests.support.api import Api, create_admin_with_cli
from tests.support.processes import start_web, wait_until
from tests.support.scans import PARAGRAPHS, coverage, joined_pdf, scan_page, text_image, words
from tests.support.stages import ocr_record

PAGES = 12


def ocr_page_versions(engine, document_id: int) -> dict[int, str]:
    """The xmin of each page OCR has written: it changes if the row is ever written again."""
    with engine.connect() as connection:
        rows = connection.execute(
            sa.text("SELECT page_number, xmin::text FROM document_pages WHERE document_id = :d AND ocr"),
            {"d": document_id},
        ).all()
    return dict(rows)


def test_worker_killed_mid_ocr_resumes_after_its_last_committed_batch(procfile, test_env):
    from docqueue.db import get_engine

    engine = get_engine()
    # Ranges of at most four pages, one batch each: twelve pages over the two PDF processes are four ranges of
    # three, each committed whole.
    worker = procfile("worker", OCR_RANGE_PAGES=4)
    procfile("clock")
    api = Api(start_web(procfile), create_admin_with_cli(test_env))
    scans = [scan_page(text_image(PARAGRAPHS[n % len(PARAGRAPHS)])) for n in range(PAGES)]
    document_id = api.upload("long-scan.pdf", joined_pdf(scans))

    def part_committed():
        record = ocr_record(engine, document_id)
        return record if record and record.status == "running" and 0 < record.units_done < PAGES else None

    wait_until(part_committed, timeout=300, message="OCR to commit a batch of pages")
    worker.kill()
    committed = ocr_page_versions(engine, document_id)
    record = ocr_record(engine, document_id)
    assert 0 < len(committed) < PAGES and record.units_done == len(committed)
    assert record.checkpoint == max(committed)

    procfile("worker", OCR_RANGE_PAGES=4)
    document = wait_until(
        lambda: (d := api.documents()[document_id])["status"] in ("completed", "failed") and d,
        timeout=400,
        message="the document to finish after the restart",
    )
    assert (document["status"], document["ocr_status"]) == ("completed", "completed"), document
    record = ocr_record(engine, document_id)
    assert (record.status, record.attempts, record.units_done, record.units_total) == ("completed", 2, PAGES, PAGES)
    after = ocr_page_versions(engine, document_id)
    assert len(after) == PAGES
    assert {page: after[page] for page in committed} == committed, "pages committed before the kill were read again"
    pages = api.get(f"/api/documents/{document_id}/pages")["pages"]
    for page in pages:
        expected = words(PARAGRAPHS[(page["page"] - 1) % len(PARAGRAPHS)])
        assert page["ocr"] and coverage(words(page["text"]), expected) >= 0.9, page


def test_a_scans_ranges_are_read_by_every_free_worker(procfile, test_env):
    from docqueue.db import get_engine

    engine = get_engine()
    # Two workers with one PDF process each: alone, either would read the twelve pages one range at a time. (Six
    # pages, at about half a second a page, could all be read by the first worker before the other fetched an offer.)
    for _ in range(2):
        procfile("worker", OCR_RANGE_PAGES=2, PDF_WORKER_PROCESSES=1)
    procfile("clock")
    api = Api(start_web(procfile), create_admin_with_cli(test_env))

    def workers_alive() -> int:
        with engine.connect() as connection:
            return connection.execute(sa.text("SELECT count(*) FROM worker_heartbeats")).scalar() >= 2

    wait_until(workers_alive, timeout=60, message="both workers to send their first heartbeat")
    scans = [scan_page(text_image(PARAGRAPHS[n % len(PARAGRAPHS)])) for n in range(12)]
    document_id = api.upload("shared-scan.pdf", joined_pdf(scans))
    document = wait_until(
        lambda: (d := api.documents()[document_id])["status"] in ("completed", "failed") and d,
        timeout=300,
        message="the scan to be read",
    )
    assert (document["status"], document["ocr_status"]) == ("completed", "completed"), document
    with engine.connect() as connection:
        ranges = connection.execute(
            sa.text(
                "SELECT pages, status, worker_id FROM ocr_ranges WHERE job_id = (SELECT max(id) FROM document_queue)"
            )
        ).all()
    assert sorted(page for pages, _, _ in ranges for page in pages) == list(range(1, 13))
    assert {status for _, status, _ in ranges} == {"done"}
    assert len({worker for _, _, worker in ranges}) == 2, f"one worker read every range: {ranges}"
    for page in api.get(f"/api/documents/{document_id}/pages")["pages"]:
        expected = words(PARAGRAPHS[(page["page"] - 1) % len(PARAGRAPHS)])
        assert page["ocr"] and coverage(words(page["text"]), expected) >= 0.9, page
