"""Hostile files against the real PDF pool: errors that cross the process boundary in our words,
a memory ceiling per process, a cap on a page's text, and decompression bombs stopped before decoding."""

from __future__ import annotations

import os
import re
import threading
import time
from pathlib import Path

import pymupdf
import pytest
import sqlalchemy as sa

from docqueue.errors import StageError, failure_kind
from docqueue.runtime.pdf_pool import run_in_pdf_process
from docqueue.runtime.pdf_processes import shutdown_pdf_pool
from docqueue.settings import get_settings
from docqueue.statuses import FailureKind
from tests.support.api import Api, create_admin_with_cli
from tests.support.factories import add_document, make_pdf
from tests.support.hostile_files import (
    cyclic_page_tree_pdf,
    jpeg_claiming,
    make_slow_pdf,
    png_bomb,
    text_bomb_pdf,
    tiff_claiming,
)
from tests.support.processes import start_web, wait_until
from tests.support.sentry_receiver import SentryReceiver
from tests.support.stages import assert_plain, job_for, process

MUPDF_ERROR_CLASSES = sorted(
    name
    for name in dir(pymupdf.mupdf)
    if name.startswith("FzError")
    and isinstance(getattr(pymupdf.mupdf, name), type)
    and issubclass(getattr(pymupdf.mupdf, name), Exception)
)
#: MuPDF's "try later" and "abort", and a system error (I/O), may pass on another attempt; the rest are the file.
TRANSIENT_MUPDF_ERRORS = {"FzErrorTrylater", "FzErrorAbort", "FzErrorSystem"}


def raise_mupdf_error(class_name: str) -> None:
    """Runs in a pool process: raise MuPDF's own exception, with text naming the temporary file as MuPDF's does."""
    raise getattr(pymupdf.mupdf, class_name)("cannot open /tmp/docqueue-7-abc/original: something broke")


def test_there_is_a_test_for_each_mupdf_error_class():
    assert len(MUPDF_ERROR_CLASSES) >= 12 and "FzErrorFormat" in MUPDF_ERROR_CLASSES


@pytest.mark.parametrize("class_name", MUPDF_ERROR_CLASSES)
def test_each_mupdf_error_class_reaches_the_worker_as_our_own_error(test_env, class_name):
    with pytest.raises(Exception) as raised:
        run_in_pdf_process(raise_mupdf_error, class_name, timeout=60)
    error = raised.value
    # Before: TypeError "cannot pickle 'SwigPyObject'", called a crash and retried.
    assert isinstance(error, StageError), repr(error)
    assert_plain(str(error))
    expected = FailureKind.TRANSIENT if class_name in TRANSIENT_MUPDF_ERRORS else FailureKind.PERMANENT
    assert failure_kind(error) is expected
    # The detail is kept for the log and Sentry.
    assert class_name in error.detail and "/tmp/docqueue-7-abc/original" in error.detail


def test_cyclic_page_tree_fails_once_with_a_plain_reason(session, owner):
    data = cyclic_page_tree_pdf()
    assert len(data) < 400
    document_id = add_document(session, owner, data)
    document = process(session, document_id)
    assert (document.status, document.error) == ("failed", "page 2 cannot be read: the page tree is cyclic")
    job = job_for(session, document_id)
    assert (job.status, job.failure_kind, job.attempts) == ("failed", "permanent", 1)
    assert_plain(job.error_message)


def test_damaged_pdf_message_names_no_temporary_file(session, owner):
    document = process(session, add_document(session, owner, b"%PDF-1.7\n" + bytes(range(256)) * 40))
    assert document.error == "the PDF file is damaged and cannot be opened"


@pytest.mark.parametrize(
    "data, message",
    [
        (png_bomb(30_000, 30_000), "the image is 30000 × 30000 pixels (900 million), more than the 89 million allowed"),
        (jpeg_claiming(60_000, 60_000), "the image is 60000 × 60000 pixels (3,600 million)"),
        (tiff_claiming(40_000, 40_000, pages=3), "page 3 of the TIFF is 40000 × 40000 pixels (1,600 million)"),
    ],
    ids=["png-0.9MB-30000x30000", "jpeg-60000x60000", "tiff-page-3"],
)
def test_decompression_bombs_fail_at_inspect_with_their_size(session, owner, data, message):
    document_id = add_document(session, owner, data, filename="scan.png")
    document = process(session, document_id)
    assert document.status == "failed"
    assert document.error.startswith(message), document.error
    assert "(MAX_IMAGE_PIXELS)" in document.error
    job = job_for(session, document_id)
    assert (job.stage, job.failure_kind, job.attempts) == ("inspect", "permanent", 1)


def test_images_within_the_pixel_limit_still_process(session, owner):
    document = process(session, add_document(session, owner, png_bomb(3000, 2000), filename="scan.png"))
    assert (document.status, document.detected_type) == ("completed", "png")


@pytest.fixture
def small_text_cap(test_env, monkeypatch):
    """MAX_PAGE_TEXT_CHARS=1000 in this process and in fresh pool processes."""
    monkeypatch.setenv("MAX_PAGE_TEXT_CHARS", "1000")
    get_settings.cache_clear()
    shutdown_pdf_pool()
    yield
    monkeypatch.undo()
    get_settings.cache_clear()
    shutdown_pdf_pool()


@pytest.mark.parametrize(
    "operations, kept, cut",
    [(2000, 1000, 1), (167, 1000, 0)],
    ids=["10000-characters", "exactly-at-the-cap"],
)
def test_page_text_is_cut_at_the_cap_and_the_cut_is_shown(
    small_text_cap, app, session, make_user, operations, kept, cut
):
    email = f"cut-{operations}@example.com"
    user_id, token = make_user(email, password="pw")
    document_id = add_document(session, user_id, make_slow_pdf(operations))  # six characters an operation
    document = process(session, document_id)
    assert document.status == "completed", document.error
    text = session.execute(
        sa.text("SELECT text FROM document_pages WHERE document_id = :d"), {"d": document_id}
    ).scalar()
    assert len(text) == kept
    app.config.update(WTF_CSRF_ENABLED=False)
    client = app.test_client()
    detail = client.get(f"/api/documents/{document_id}", headers={"Authorization": f"Bearer {token}"}).json
    # Before: a page of exactly MAX_PAGE_TEXT_CHARS counted as cut.
    assert detail["text_truncated_pages"] == cut
    assert client.post("/login", data={"email": email, "password": "pw"}).status_code == 302
    page = client.get(f"/documents/{document_id}").get_data(as_text=True)
    shown = "Text cut on 1 page: it holds" in page
    assert shown == bool(cut), "the document page shows the count as the API does"


def pool_processes(session_id: int) -> dict[int, int]:
    """PDF pool processes (spawned by multiprocessing) in a process session: pid -> VmPeak in kB."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            status = Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue  # gone meanwhile
        session = int(stat.rsplit(")", 1)[1].split()[3])
        if session == session_id and b"spawn_main" in cmdline:
            peak = re.search(r"VmPeak:\s+(\d+) kB", status)
            found[int(entry)] = int(peak.group(1)) if peak else 0
    return found


def test_memory_bomb_fails_at_the_cap_and_its_process_is_replaced_while_others_work(procfile, test_env):
    worker = procfile("worker", PDF_WORKER_PROCESSES=2)
    procfile("clock")
    api = Api(start_web(procfile), create_admin_with_cli(test_env))
    session_id = worker.process.pid
    first = wait_until(
        lambda: len(pool_processes(session_id)) == 2 and pool_processes(session_id),
        90,
        message="the worker's two PDF processes",
    )
    peaks: dict[int, int] = {}
    done = threading.Event()

    def sample():
        while not done.is_set():
            for pid, peak in pool_processes(session_id).items():
                peaks[pid] = max(peaks.get(pid, 0), peak)
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        bomb_data = text_bomb_pdf()
        assert len(bomb_data) < 200_000
        bomb = api.upload("bomb.pdf", bomb_data)
        others = [api.upload(f"ok-{n}.pdf", make_pdf([f"page one of {n}", "page two"])) for n in range(4)]
        documents = wait_until(lambda: api.all_finished([bomb, *others]), timeout=240, message="every document")
    finally:
        done.set()
        sampler.join()
    assert documents[bomb]["status"] == "failed"
    assert "needs more than 1 GB to read page 1" in documents[bomb]["error"]
    assert_plain(documents[bomb]["error"])
    assert all(documents[n]["status"] == "completed" for n in others), [documents[n] for n in others]
    cap_kb = 1024 * 1024
    print(f"pool processes seen: {len(peaks)}, highest VmPeak {max(peaks.values()) // 1024} MB")
    assert peaks and all(peak <= cap_kb for peak in peaks.values()), peaks
    now = wait_until(
        lambda: len(pool_processes(session_id)) == 2 and pool_processes(session_id),
        60,
        message="the pool back at two processes",
    )
    assert set(first) - set(now), "the process that reached its cap was replaced"
    assert "page 1" in worker.log() and "FzError" not in documents[bomb]["error"]


def test_a_cyclic_page_tree_is_logged_and_reported_with_its_detail_and_ids(procfile, session, owner):
    with SentryReceiver() as sentry:
        worker = procfile("worker", SENTRY_DSN=sentry.dsn)
        procfile("clock", SENTRY_DSN=sentry.dsn)
        document_id = add_document(session, owner, cyclic_page_tree_pdf())

        def failed():
            session.commit()  # a fresh snapshot each time
            job = job_for(session, document_id)
            return job if job.status == "failed" else None

        job = wait_until(failed, 90, message="the document to fail")
        wait_until(lambda: sentry.events, 30, message="the failure's Sentry event")
    # The user reads the plain reason; the log and Sentry get MuPDF's own error, keyed by job and document.
    assert job.error_message == "page 2 cannot be read: the page tree is cyclic"
    log = worker.log()
    line = f"job {job.id} (document {document_id}) stage {job.stage} attempt 1 failed: {job.error_message}"
    assert line in log, log
    detail = log.split(line, 1)[1]
    assert "FzErrorFormat" in detail and "cycle in page tree" in detail, log
    # A damaged file is the user's news: an info-level record keeping the reader's error, not an error event.
    (event,) = sentry.events
    assert event["level"] == "info"
    assert (str(event["tags"]["job_id"]), str(event["tags"]["document_id"])) == (str(job.id), str(document_id))
    assert "cycle in page tree" in event["extra"]["detail"] and "FzErrorFormat" in event["extra"]["detail"]
