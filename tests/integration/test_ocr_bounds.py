"""A document's OCR is bounded: by its pages, by a cancel, in Redis messages, and by converting an image once.

Real Procfile processes where the behaviour is about processes (a cancel
stopping readers, the offers in Redis); a real PDF pool otherwise.
"""

from __future__ import annotations

import os
import time

import dramatiq
import pymupdf
import pytest
import sqlalchemy as sa
from PIL import Image

from docqueue.ocr.range_messages import OCR_RANGE_ACTOR
from tests.support.api import Api
from tests.support.factories import add_document
from tests.support.processes import start_web, wait_until
from tests.support.scans import PARAGRAPHS, scan_page, text_image
from tests.support.stages import job_for, ocr_record, process


def repeated_scan(pages: int) -> bytes:
    """An image-only PDF of `pages` pages showing one 300-dpi scan of a paragraph (stored once)."""
    document = pymupdf.open(stream=scan_page(text_image(PARAGRAPHS[0])), filetype="pdf")
    for _ in range(pages - 1):
        document.fullcopy_page(0)
    return document.tobytes(garbage=1)


def group_cpu_seconds(process_group: int) -> float:
    """CPU seconds used so far by the live processes of `process_group` (the worker and its PDF processes)."""
    ticks = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        if int(fields[2]) == process_group:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def quiet(process_group: int, window: float = 2.0) -> bool:
    """Whether the group used under a tenth of a core over the next `window` seconds (a reader uses a whole one)."""
    before = group_cpu_seconds(process_group)
    time.sleep(window)
    return group_cpu_seconds(process_group) - before < window / 10


def ocr_offers(broker) -> int:
    """OCR-range messages Redis holds now, waiting, delayed or being read."""
    count = 0
    for queue in ("documents", "documents.DQ"):
        for data in broker.client.hvals(f"{broker.namespace}:{queue}.msgs"):
            count += dramatiq.Message.decode(data).actor_name == OCR_RANGE_ACTOR
    return count


def ranges_of(engine, document_id: int) -> list[sa.Row]:
    with engine.connect() as connection:
        return connection.execute(
            sa.text(
                "SELECT r.status, count(*) FROM ocr_ranges r JOIN document_queue q ON q.id = r.job_id "
                "WHERE q.document_id = :d GROUP BY r.status"
            ),
            {"d": document_id},
        ).all()


def cancel(document_id: int) -> None:
    from docqueue.db import session_scope
    from docqueue.queue.operator import OperatorActions

    with session_scope() as session:
        job_id = session.execute(
            sa.text("SELECT id FROM document_queue WHERE document_id = :d"), {"d": document_id}
        ).scalar()
        assert OperatorActions(session, None).cancel([job_id]) == 1


def test_a_cancel_stops_every_range_reader_within_seconds_and_leaves_no_range_waiting(
    procfile, test_env, make_user, engine
):
    # Two ranges of 40 pages: before, each reader read its whole range on after the cancel (tens of seconds).
    worker = procfile("worker", OCR_RANGE_PAGES=40, PDF_WORKER_PROCESSES=2)
    procfile("clock")
    api = Api(start_web(procfile), make_user()[1])
    document_id = api.upload("long-scan.pdf", repeated_scan(80))
    wait_until(
        lambda: (record := ocr_record(engine, document_id)) and record.status == "running" and record.units_done > 0,
        timeout=300,
        message="OCR to commit its first pages",
    )
    assert not quiet(worker.process.pid), "the readers were not reading"
    cancel(document_id)
    assert not [row for row in ranges_of(engine, document_id) if row.status == "pending"]
    wait_until(lambda: quiet(worker.process.pid), timeout=20, message="the range readers to stop after the cancel")
    document = api.get(f"/api/documents/{document_id}")
    assert document["status"] == "cancelled" and ocr_record(engine, document_id).units_done < 80
    assert ranges_of(engine, document_id) == []


def test_ocr_range_offers_in_redis_stay_as_few_as_the_ranges_that_can_run(procfile, test_env, make_user, broker):
    # 24 one-page ranges: before, 23 offers went to Redis at once (12,100 for the 100,000 pages).
    procfile("worker", OCR_RANGE_PAGES=1, PDF_WORKER_PROCESSES=2)
    procfile("clock")
    api = Api(start_web(procfile), make_user()[1])
    document_id = api.upload("scan.pdf", repeated_scan(24))
    most = 0

    def finished():
        nonlocal most
        most = max(most, ocr_offers(broker))
        document = api.get(f"/api/documents/{document_id}")
        return document["status"] in ("completed", "failed") and document

    document = wait_until(finished, timeout=400, interval=0.1, message="the scan to be read")
    assert (document["status"], document["ocr_status"]) == ("completed", "completed"), document
    pages = api.get(f"/api/documents/{document_id}/pages")["pages"]
    assert len(pages) == 24 and all(page["ocr"] and "the" in page["text"].lower() for page in pages)
    # An offer per PDF process, and each reader's next offer sent just before its own is acknowledged.
    assert 0 < most <= 4, most


def paths_only_pdf(operations: int) -> bytes:
    """A one-page PDF with no text layer (so OCR reads it) that is slow to draw: `operations` line paths."""
    document = pymupdf.open()
    page = document.new_page()
    contents = document.get_new_xref()
    document.update_object(contents, "<< >>")
    document.update_stream(contents, b"0 0 m 500 700 l 30 600 l h S " * operations)
    document.xref_set_key(page.xref, "Contents", f"{contents} 0 R")
    return document.tobytes(deflate=True)


@pytest.fixture
def one_second_a_page(test_env, monkeypatch):
    from docqueue.settings import get_settings

    monkeypatch.setenv("OCR_SECONDS_PER_PAGE", "1")
    get_settings.cache_clear()
    yield
    monkeypatch.undo()
    get_settings.cache_clear()


def test_a_documents_ocr_stops_for_good_past_its_pages_budget(session, owner, one_second_a_page):
    # Drawing its one page at 300 dpi takes about 20 s here; before, only the page's own 300 s limit bounded it.
    document_id = add_document(session, owner, paths_only_pdf(1_000), filename="slow-to-draw.pdf")
    document = process(session, document_id)
    assert (document.status, document.error) == ("failed", "ocr stopped after the 1 s time limit"), document
    assert document.ocr_status == "failed"
    job = job_for(session, document_id)
    assert (job.stage, job.failure_kind, job.attempts) == ("ocr", "permanent", 1)
    assert ranges_of(session.get_bind(), document_id) in ([], [("failed", 1)])


def test_a_range_of_a_many_frame_tiff_converts_only_its_own_frames(tmp_path):
    from docqueue.ocr.pages import open_pages_as_pdf

    frames = [Image.new("L", (16, 16), color=n % 251) for n in range(2_000)]
    path = tmp_path / "frames.tiff"
    frames[0].save(path, "TIFF", save_all=True, append_images=frames[1:])
    wanted = list(range(1_501, 1_509))
    document, places = open_pages_as_pdf(str(path), "tiff", wanted)
    with document:
        # Before, every range converted all 2,000 frames (10,000 frames: 75 s a range, 1,250 ranges).
        assert document.page_count == len(wanted) and places == list(range(len(wanted)))
        for number, place in zip(wanted, places):
            pixel = document.load_page(place).get_pixmap(colorspace=pymupdf.csGRAY).samples[0]
            assert pixel == (number - 1) % 251, number
