"""Running a document's stages in the test's own process, as a worker would, and reading what they left."""

from __future__ import annotations

import re

import sqlalchemy as sa

from docqueue.queue import DocumentQueueService
from docqueue.worker.stage_runner import run_stage


def run_until_settled(session, document_id: int) -> sa.Row:
    """Admit and run the document's stages here until it ends or waits (pending and not yet due)."""
    while True:
        job = latest_job(session, document_id)
        if job.status == "pending":
            admitted = DocumentQueueService(session).admit_pending()
            session.commit()
            if not admitted:
                return job
        elif job.status == "queued":
            run_stage(job.stage, job.id)
        else:
            return job


def stage_record(session, job_id: int, stage: str) -> sa.Row:
    return session.execute(
        sa.text("SELECT * FROM document_stage_records WHERE job_id = :j AND stage = :s"), {"j": job_id, "s": stage}
    ).one()


def process(session, document_id: int) -> sa.Row:
    """Admit the document's job and run every stage in this process, as the worker would."""
    while True:
        job = session.execute(
            sa.text("SELECT id, status, stage FROM document_queue WHERE document_id = :d ORDER BY id DESC LIMIT 1"),
            {"d": document_id},
        ).one()
        if job.status == "pending":
            DocumentQueueService(session).admit_pending()
            session.commit()
        elif job.status == "queued":
            run_stage(job.stage, job.id)
        else:
            break
    return session.execute(sa.text("SELECT * FROM documents WHERE id = :d"), {"d": document_id}).one()


def job_for(session, document_id: int) -> sa.Row:
    return session.execute(sa.text("SELECT * FROM document_queue WHERE document_id = :d"), {"d": document_id}).one()


def assert_plain(message: str) -> None:
    assert message and not INTERNALS.search(message), f"internals shown to the user: {message!r}"


def latest_job(session, document_id: int) -> sa.Row:
    session.rollback()  # see other transactions' commits
    return session.execute(
        sa.text("SELECT * FROM document_queue WHERE document_id = :d ORDER BY id DESC LIMIT 1"), {"d": document_id}
    ).one()


#: What must never reach a user: temporary paths, MuPDF's codes, library class names, tracebacks, SQL.
INTERNALS = re.compile(r"/tmp|docqueue-\d|code=\d|Fz[A-Z]|Swig|Error\b|Traceback|pymupdf|SELECT|INSERT|UPDATE")


def settle(session, document_id: int) -> sa.Row:
    """Run the document here until it completes or fails, retries made due at once."""
    while True:
        job = run_until_settled(session, document_id)
        if job.status != "pending":
            return job
        session.execute(sa.text("UPDATE document_queue SET run_after = now() WHERE id = :j"), {"j": job.id})
        session.commit()


def ocr_record(engine, document_id: int):
    with engine.connect() as connection:
        return connection.execute(
            sa.text("SELECT * FROM document_stage_records WHERE document_id = :d AND stage = 'ocr'"),
            {"d": document_id},
        ).first()
