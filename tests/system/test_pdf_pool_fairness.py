"""The probe: another user's small document completes while a viewer's files fill every PDF process.

Real Procfile processes (web, worker with two PDF processes, clock). The
issue's measure: a probe user's small PDF, normally done in about a second,
waited five minutes behind two 5 KB PDFs that held both PDF processes for
the whole stage limit.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from docqueue.queue.attempts import MADE_ROOM
from tests.support.api import Api
from tests.support.factories import make_pdf
from tests.support.hostile_files import form_bomb
from tests.support.processes import start_web, wait_until

PREEMPTED = "another user's work waited for this PDF process: the work resumes later"


def jobs(engine, document_ids: list[int]) -> list[sa.Row]:
    with engine.connect() as connection:
        return connection.execute(
            sa.text("SELECT document_id, status, stage FROM document_queue WHERE document_id = ANY(:ids)"),
            {"ids": document_ids},
        ).all()


@pytest.mark.parametrize(
    "files",
    [
        # The case: two files (the viewer's share of the slots) fill both PDF processes.
        2,
        # Four (all OCR_CONCURRENT_JOBS) also take every slot and worker thread: one is handed back to make room.
        4,
    ],
)
def test_a_probe_completes_while_a_viewers_endless_files_hold_every_pdf_process(
    procfile, test_env, make_user, engine, files
):
    # The content limits are raised: these files stand for any file slow in a way `inspect` cannot measure.
    procfile("worker", MAX_CONTENT_NESTING=100, MAX_CONTENT_OPERATORS=10**18, PDF_WORKER_PROCESSES=2)
    procfile("clock")
    base_url = start_web(procfile)
    viewer, prober = Api(base_url, make_user()[1]), Api(base_url, make_user()[1])

    endless = [viewer.upload(f"endless-{n}.pdf", form_bomb(25)) for n in range(files)]

    def every_process_busy() -> bool:
        states = [(status, stage) for _, status, stage in jobs(engine, endless)]
        return {status for status, _ in states} == {"processing"} and states.count(("processing", "extract_text")) >= 2

    wait_until(
        every_process_busy,
        timeout=120,
        message=lambda: f"the endless files to fill both PDF processes: {jobs(engine, endless)}",
    )

    probe = prober.upload("probe.pdf", make_pdf(["a small document from another user"]))
    # Before: the probe waited for a PDF process until the endless files' 300 s limit.
    document = wait_until(
        lambda: (d := prober.get(f"/api/documents/{probe}"))["status"] in ("completed", "failed") and d,
        timeout=120,
        message="the probe to finish",
    )
    assert (document["status"], document["error"]) == ("completed", None), document
    pages = prober.get(f"/api/documents/{probe}/pages")["pages"]
    assert pages[0]["text"].strip() == "a small document from another user"

    # The viewer's files were neither finished nor failed for it: one gave way and resumes later.
    assert {status for _, status, _ in jobs(engine, endless)} <= {"pending", "queued", "processing"}
    attempts = [
        attempt for document_id in endless for attempt in viewer.get(f"/api/documents/{document_id}")["attempts"]
    ]
    given_way = [attempt for attempt in attempts if attempt["outcome"] == "handed_back"]
    assert given_way and all(attempt["error_message"] in (PREEMPTED, MADE_ROOM) for attempt in given_way), attempts
    assert not [attempt for attempt in attempts if attempt["outcome"] in ("failed", "retrying")], attempts
