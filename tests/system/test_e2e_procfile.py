"""End to end through the real Procfile processes: gunicorn web, dramatiq worker, clock.

Files go in over HTTP and come out processed, through crashes and restarts.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time

import pytest
import requests
import sqlalchemy as sa

from tests.support.api import Api, create_admin_with_cli
from tests.support.hostile_files import make_slow_pdf
from tests.support.processes import CORPUS, free_port, start_web, wait_for_web, wait_until

# make_slow_pdf's pages draw millions of characters: slow to read, and over the default 1 GB per PDF
# process (PDF_PROCESS_MEMORY_MB), which would fail them as text bombs. These tests are about slowness.
SLOW_PDF_MEMORY = {"PDF_PROCESS_MEMORY_MB": 4096}


@pytest.fixture(params=["direct", "pgbouncer"])
def connection_env(request) -> dict:
    """Each Procfile process's database settings: straight to Postgres, or through a transaction-mode PgBouncer
    (prepared statements off, session settings per transaction, the clock's LISTEN on the direct URL)."""
    return {} if request.param == "direct" else request.getfixturevalue("pooled_env")


# A log line that reports a failure: an error or worse, a traceback, a pooler's complaint.
ERROR_LINE = re.compile(r"\b(ERROR|CRITICAL)\b|Traceback|prepared statement|pooler error")


def assert_as_truth_says(api: Api, documents: dict[int, dict], uploaded: dict[int, str], corpus_truth: dict) -> None:
    for document_id, name in uploaded.items():
        truth, document = corpus_truth[name], documents[document_id]
        assert (document["status"], document["error"]) == ("completed", None), name
        assert document["page_count"] == truth["pages"], name
        assert document["sha256"] == truth["sha256"], name
        assert document["ocr_status"] == ("completed" if truth["pages_without_text"] else "not_needed"), name
        pages = api.get(f"/api/documents/{document_id}/pages?limit=1000")["pages"]
        assert len(pages) == truth["pages"], name
        assert sum(len(page["text"]) for page in pages if not page["ocr"]) == truth["text_chars"], name
        # Exactly the pages without a text layer were sent to OCR.
        assert sum(1 for page in pages if page["ocr"]) == truth["pages_without_text"], name
        ocr = {stage["stage"]: stage for stage in api.get(f"/api/documents/{document_id}")["stages"]}["ocr"]
        if truth["pages_without_text"]:
            assert (ocr["status"], ocr["units_total"]) == ("completed", truth["pages_without_text"]), name
        else:
            assert ocr["status"] == "skipped", name


def test_every_corpus_pdf_is_processed_as_truth_says(procfile, test_env, corpus_truth, connection_env):
    from docqueue.db import get_engine

    processes = [procfile("worker", **connection_env), procfile("clock", **connection_env)]
    port = free_port()
    processes.append(procfile("web", PORT=port, **connection_env))
    base_url = f"http://127.0.0.1:{port}"
    wait_for_web(base_url)
    api = Api(base_url, create_admin_with_cli(test_env))
    uploaded = {api.upload(name, (CORPUS / "pdf" / name).read_bytes()): name for name in sorted(corpus_truth)}

    documents = wait_until(lambda: api.all_finished(uploaded), timeout=180, message="every corpus PDF to finish")
    assert_as_truth_says(api, documents, uploaded, corpus_truth)
    stats = api.get("/api/queue/stats")
    assert (stats["pending"], stats["processing"], stats["failed"]) == (0, 0, 0)
    assert stats["completed_today"] == len(uploaded)

    # Every document again: a second run through the same processes gives the same results.
    for document_id in uploaded:
        response = requests.post(f"{base_url}/api/documents/{document_id}/reprocess", headers=api.headers, timeout=30)
        assert response.status_code == 202, response.text
    documents = wait_until(lambda: api.all_finished(uploaded), timeout=180, message="every reprocess to finish")
    assert_as_truth_says(api, documents, uploaded, corpus_truth)
    jobs = jobs_by_document(get_engine())
    assert {document_id: jobs[document_id] for document_id in uploaded} == {
        document_id: [("completed", "chunk")] * 2 for document_id in uploaded
    }, "two runs each, both completed"
    # The clock listens on a direct connection (LISTEN does not work through a transaction pooler).
    listening = "LISTEN on DATABASE_DIRECT_URL" if connection_env else "LISTEN on DATABASE_URL"
    assert listening in processes[1].log()
    for process in processes:
        log = process.log()
        assert not [line for line in log.splitlines() if ERROR_LINE.search(line)], (process.name, log[-5000:])


def jobs_by_document(engine) -> dict[int, list[tuple]]:
    with engine.connect() as connection:
        rows = connection.execute(sa.text("SELECT document_id, status, stage FROM document_queue ORDER BY id")).all()
    jobs: dict[int, list[tuple]] = {}
    for document_id, status, stage in rows:
        jobs.setdefault(document_id, []).append((status, stage))
    return jobs


def test_worker_sigkill_and_web_restart_lose_and_repeat_nothing(procfile, test_env, corpus_truth, connection_env):
    from docqueue.db import get_engine

    engine = get_engine()
    worker = procfile("worker", **SLOW_PDF_MEMORY, **connection_env)
    procfile("clock", **connection_env)
    port = free_port()
    web = procfile("web", PORT=port, **connection_env)
    base_url = f"http://127.0.0.1:{port}"
    wait_for_web(base_url)
    api = Api(base_url, create_admin_with_cli(test_env))
    # Slow files keep the worker busy so the kill lands mid-stage.
    uploaded = {api.upload(f"slow-{n}.pdf", make_slow_pdf(1_500_000)): None for n in range(3)}
    uploaded.update({api.upload(name, (CORPUS / "pdf" / name).read_bytes()): name for name in sorted(corpus_truth)})

    def some_in_flight():
        with engine.connect() as connection:
            return connection.execute(
                sa.text("SELECT id FROM document_queue WHERE status = 'processing' LIMIT 1")
            ).scalar()

    in_flight_job = wait_until(some_in_flight, timeout=60, message="a job to be processing")
    worker.kill()

    # Restart web mid-run, as a deploy does; uploads keep working against the new one.
    assert web.stop() == 0
    procfile("web", PORT=port, **connection_env)
    wait_for_web(base_url)
    late = api.upload("late.pdf", (CORPUS / "pdf" / "minimal-document.pdf").read_bytes())
    uploaded[late] = "minimal-document.pdf"

    procfile("worker", **SLOW_PDF_MEMORY, **connection_env)
    documents = wait_until(lambda: api.all_finished(uploaded), timeout=240, message="every document to finish")
    for document_id, name in uploaded.items():
        document = documents[document_id]
        assert (document["status"], document["error"]) == ("completed", None), (name, document)
        if name:
            assert document["page_count"] == corpus_truth[name]["pages"]
    # Once: one job per document, completed; the killed job was taken back and finished.
    jobs = jobs_by_document(engine)
    assert {document_id: jobs[document_id] for document_id in uploaded} == {
        # The last stage that ran: the AI stages after it are not configured here, and were skipped on the way.
        document_id: [("completed", "chunk")]
        for document_id in uploaded
    }
    with engine.connect() as connection:
        assert (
            connection.execute(
                sa.text("SELECT status FROM document_queue WHERE id = :id"), {"id": in_flight_job}
            ).scalar()
            == "completed"
        )


def test_paas_sigterm_hands_the_running_stage_back_for_the_next_worker(procfile, test_env, connection_env):
    from docqueue.db import get_engine

    engine = get_engine()
    # The slow file goes stage by stage, as a large document does (its one pass would read it whole under
    # `inspect`): the SIGTERM lands in extract_text.
    worker = procfile("worker", **SLOW_PDF_MEMORY, **connection_env, SMALL_DOCUMENT_MAX_BYTES=0)
    api = Api(start_web(procfile, **connection_env), create_admin_with_cli(test_env))
    document_id = api.upload("slow.pdf", make_slow_pdf(2_500_000))

    def extracting():
        with engine.connect() as connection:
            return connection.execute(
                sa.text(
                    "SELECT 1 FROM document_queue WHERE document_id = :d AND status = 'processing' AND stage = 'extract_text'"
                ),
                {"d": document_id},
            ).scalar()

    wait_until(extracting, timeout=60, message="extraction to start")
    # A PaaS signals every process of the dyno and the dramatiq master forwards one more SIGTERM to
    # its child. Those two may reach the child as one, so send the child a third one a moment later.
    worker_children = subprocess.run(
        ["pgrep", "-P", str(worker.process.pid)], capture_output=True, text=True, check=True
    ).stdout.split()
    worker.signal_group(signal.SIGTERM)
    time.sleep(0.5)
    for pid in worker_children:
        os.kill(int(pid), signal.SIGTERM)
    assert worker.process.wait(timeout=60) == 0, worker.log()
    log = worker.log()
    assert "Ignoring repeated SIGTERM" in log
    assert "Killing worker process" not in log
    with engine.connect() as connection:
        job = connection.execute(
            sa.text("SELECT status, stage, attempts FROM document_queue WHERE document_id = :d"), {"d": document_id}
        ).one()
    assert tuple(job) == ("queued", "extract_text", 0), "handed back at once, the attempt not counted"

    procfile("worker", **connection_env)
    document = wait_until(lambda: api.all_finished([document_id]), timeout=120, message="the next worker")[document_id]
    assert document["status"] == "completed"
    attempts = api.get(f"/api/documents/{document_id}")["attempts"]
    assert [(a["stage"], a["attempt"], a["outcome"]) for a in attempts] == [
        ("inspect", 1, "succeeded"),
        ("extract_text", 1, "handed_back"),
        ("extract_text", 1, "succeeded"),
        ("extract_images", 1, "succeeded"),
        ("chunk", 1, "succeeded"),
    ]
