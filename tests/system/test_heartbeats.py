"""Heartbeats: a stage that runs longer than the heartbeat timeout is kept alive and completes once.

Real worker and clock processes with a 1 s beat and a 3 s timeout: the
clock would take the item back if the beats stopped, so finishing with one
attempt proves they kept it; the attempt history shows it in the API.
"""

from __future__ import annotations

import sqlalchemy as sa

from tests.support.factories import add_document
from tests.support.hostile_files import make_long_pdf
from tests.support.processes import wait_until

SHORT_BEATS = {"HEARTBEAT_INTERVAL_SECONDS": "1", "HEARTBEAT_TIMEOUT_SECONDS": "3", "DISPATCH_INTERVAL_SECONDS": "1"}


def test_a_stage_longer_than_the_timeout_completes_once(procfile, session, make_user, client):
    owner, token = make_user()
    # Long enough to outlive the 3 s timeout on a fast machine too (12 pages took 2.97 s).
    document_id = add_document(session, owner, make_long_pdf(30, 400_000), filename="long.pdf")
    procfile("worker", **SHORT_BEATS)
    procfile("clock", **SHORT_BEATS)

    def finished():
        row = session.execute(sa.text("SELECT status FROM documents WHERE id = :d"), {"d": document_id}).one()
        session.commit()
        return row.status in ("completed", "failed") and row.status

    assert wait_until(finished, timeout=180, message="the long document to finish") == "completed"
    detail = client.get(f"/api/documents/{document_id}", headers={"Authorization": f"Bearer {token}"}).get_json()
    attempts = [(a["stage"], a["attempt"], a["outcome"]) for a in detail["attempts"]]
    ran = [stage["stage"] for stage in detail["stages"] if stage["status"] == "completed"]
    assert ran == ["inspect", "extract_text", "extract_images", "chunk"], "the others had nothing to do"
    assert attempts == [(stage, 1, "succeeded") for stage in ran], "one attempt per stage that ran"
    extraction = detail["attempts"][1]
    assert extraction["duration_ms"] > 3000, "the premise: the stage outlived the heartbeat timeout"
    assert extraction["worker"] and extraction["finished_at"] and extraction["error_class"] is None
    job = session.execute(
        sa.text("SELECT status, attempts FROM document_queue WHERE document_id = :d"), {"d": document_id}
    ).one()
    assert tuple(job) == ("completed", 1)
