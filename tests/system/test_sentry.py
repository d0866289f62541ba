"""Sentry events from real worker and clock processes, received by a local stand-in for Sentry.

One event per final failure (not per attempt), one for jobs the clock took
back from a dead worker, one when work waits with no live worker, and one
when a circuit breaker opens.
"""

from __future__ import annotations

import signal
import time

import psutil
import sqlalchemy as sa

from tests.support.factories import add_document, make_pdf
from tests.support.hostile_files import make_busy_pdf
from tests.support.processes import wait_until
from tests.support.sentry_receiver import SentryReceiver
from tests.support.service_stub import ServiceStub, start_stub


def job_state(session, document_id):
    row = session.execute(
        sa.text("SELECT status, stage, attempts FROM document_queue WHERE document_id = :d"), {"d": document_id}
    ).one()
    session.commit()
    return tuple(row)


def kill_pdf_processes(worker) -> None:
    """SIGKILL the worker's PDF pool processes (the grandchildren of the dramatiq master), as the OOM killer would."""
    master = psutil.Process(worker.process.pid)
    for child in master.children():
        for pool_process in child.children():
            if "spawn_main" in " ".join(pool_process.cmdline()):  # not multiprocessing's resource tracker
                pool_process.send_signal(signal.SIGKILL)


def test_final_failures_recoveries_and_unattended_work_each_send_one_event(procfile, session, make_user):
    owner, _ = make_user()
    with SentryReceiver() as sentry:
        env = {
            "SENTRY_DSN": sentry.dsn,
            "HEARTBEAT_TIMEOUT_SECONDS": "4",
            "NO_WORKER_ALERT_SECONDS": "3",
            "RETRY_BACKOFF_SECONDS": "1",
            # One PDF process, so the one killed is the one running the stage (pebble breaks the whole
            # pool when a process dies while no task runs).
            "PDF_WORKER_PROCESSES": "1",
            # The busy files go stage by stage, as large documents do (a small document's one pass would
            # read them under `inspect`): the kills land in extract_text.
            "SMALL_DOCUMENT_MAX_BYTES": "0",
        }
        worker = procfile("worker", **env)
        procfile("clock", **env)

        # A transient failure twice: retried once, then final. Only the final one is an event. The file takes
        # seconds to read (but little memory), so the kill a second into the stage lands mid-stage.
        doomed = add_document(session, owner, make_busy_pdf(8_000_000), filename="doomed.pdf")
        session.execute(sa.text("UPDATE document_queue SET max_attempts = 2 WHERE document_id = :d"), {"d": doomed})
        session.commit()
        for attempt in (1, 2):
            expected = ("processing", "extract_text", attempt)
            wait_until(
                lambda expected=expected: job_state(session, doomed) == expected,
                timeout=90,
                message=f"extraction attempt {attempt}",
            )
            time.sleep(1)
            kill_pdf_processes(worker)
        wait_until(lambda: job_state(session, doomed)[0] == "failed", timeout=60, message="the final failure")
        wait_until(
            lambda: any("StageProcessDied" in text for text in sentry.texts()),
            timeout=30,
            message="the final failure's event",
        )

        # A worker dies mid-stage: the clock takes its item back, then finds no live worker for the work.
        orphan = add_document(session, owner, make_busy_pdf(8_000_000), filename="orphan.pdf")
        wait_until(
            lambda: job_state(session, orphan)[:2] == ("processing", "extract_text"),
            timeout=90,
            message="the orphan's extraction",
        )
        worker.kill()
        wait_until(
            lambda: any(t.startswith("Recovered stale jobs") for t in sentry.texts()),
            timeout=60,
            message="the recovery event",
        )
        wait_until(
            lambda: any(t.startswith("Pending work with no live worker") for t in sentry.texts()),
            timeout=60,
            message="the no-worker event",
        )
        time.sleep(3)  # several more clock ticks of the same outage
        texts = sentry.texts()

    final_failures = [t for t in texts if "StageProcessDied" in t]
    assert len(final_failures) == 1, texts
    assert final_failures[0].startswith("StageProcessDied: the processing subprocess died"), texts
    assert sum(t.startswith("Recovered stale jobs: 1 back to pending") for t in texts) == 1, texts
    assert sum(t.startswith("Pending work with no live worker") for t in texts) == 1, "once per outage"


def test_a_breaker_opened_while_many_workers_call_the_service_sends_one_event(procfile, session, make_user):
    owner, _ = make_user(concurrent_ocr_jobs=10)
    service = ServiceStub(default=(500, {}, b"down"))
    service_url, server = start_stub(service)
    try:
        with SentryReceiver() as sentry:
            env = {
                "SENTRY_DSN": sentry.dsn,
                "EMBEDDINGS_PROVIDER": "openai",
                "EMBEDDINGS_BASE_URL": service_url + "/v1",
                "EMBEDDINGS_MODEL": "stub-embed",
                "CHUNK_SIZE_CHARS": "300",
                "CHUNK_OVERLAP_CHARS": "50",
                "AI_RETRY_BACKOFF_MS": "10",
                "AI_MAX_TRIES": "10",
                "BREAKER_FAIL_MAX": "5",
                "BREAKER_RESET_SECONDS": "600",
                # Two processes, each running several documents' batches at once: the breaker opens in one
                # thread while the others call it, and every one of them then sees it change.
                "WORKER_PROCESSES": "2",
                "PDF_WORKER_PROCESSES": "1",
            }
            pages = [
                "\n".join(f"line {n} of page {page} about widgets and gadgets" for n in range(30)) for page in range(3)
            ]
            documents = [add_document(session, owner, make_pdf(pages), filename=f"d{i}.pdf") for i in range(6)]
            procfile("worker", **env)
            procfile("clock", **env)

            def waiting():
                rows = session.execute(
                    sa.text("SELECT error FROM documents WHERE id = ANY(:ids)"), {"ids": documents}
                ).scalars()
                session.commit()
                return all((error or "").startswith("waiting: embeddings provider unavailable") for error in rows)

            wait_until(waiting, timeout=180, message="every document to wait for the open breaker")
            wait_until(
                lambda: any(t.startswith("Circuit breaker opened") for t in sentry.texts()),
                timeout=30,
                message="the breaker's event",
            )
            time.sleep(3)  # time for any second event to arrive
            texts = sentry.texts()
    finally:
        server.shutdown()

    assert [t for t in texts if t.startswith("Circuit breaker opened")] == [
        "Circuit breaker opened: the embeddings provider failed 5 calls in a row; calls to it wait 600 s"
    ], texts
    assert len(service.requests) >= 5
