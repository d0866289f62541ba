"""Helpers for driving the queue's state machine by hand, as the dispatcher and a worker would."""

from __future__ import annotations

import sqlalchemy as sa

from docqueue.queue import DocumentQueueService
from docqueue.statuses import FailureKind
from tests.support.factories import add_document


def job_row(session, job_id):
    return session.execute(sa.text("SELECT * FROM document_queue WHERE id = :id"), {"id": job_id}).one()


def document_row(session, document_id):
    return session.execute(sa.text("SELECT * FROM documents WHERE id = :id"), {"id": document_id}).one()


def only_job_id(session, document_id):
    return session.execute(
        sa.text("SELECT id FROM document_queue WHERE document_id = :id ORDER BY id DESC LIMIT 1"), {"id": document_id}
    ).scalar_one()


def admit(session):
    """Admit pending work without sending messages (the worker side is not under test here)."""
    dispatches = DocumentQueueService(session).admit_pending()
    session.commit()
    return dispatches


def admitted_job(session, make_user) -> tuple[int, int]:
    """A fresh document whose job the dispatcher has admitted: (document id, job id)."""
    owner, _ = make_user()
    document_id = add_document(session, owner)
    job_id = only_job_id(session, document_id)
    admit(session)
    return document_id, job_id


def claim(session, job_id, stage="inspect", worker="w1"):
    result = DocumentQueueService(session).claim(job_id, stage, worker)
    session.commit()
    return result


def failed_both_ways(session, owner_id: int) -> tuple[int, int]:
    """Two failed documents: (one refused for good as unsupported, one out of attempts on a transient error)."""
    rejected = add_document(session, owner_id)
    exhausted = add_document(session, owner_id)
    admit(session)
    queue = DocumentQueueService(session)
    queue.mark_failed(claim(session, only_job_id(session, rejected)), "unsupported file type", FailureKind.PERMANENT)
    session.execute(sa.text("UPDATE document_queue SET max_attempts = 1 WHERE document_id = :id"), {"id": exhausted})
    queue.mark_failed(claim(session, only_job_id(session, exhausted)), "service unavailable", FailureKind.TRANSIENT)
    session.commit()
    return rejected, exhausted


def failed_job(session, owner_id: int, message: str = "extract_text failed: OSError: disk went away") -> int:
    """A job that was claimed and failed for good, the way a worker records it."""
    job_id = only_job_id(session, add_document(session, owner_id))
    admit(session)
    held = claim(session, job_id)
    DocumentQueueService(session).mark_failed(held, message, FailureKind.PERMANENT)
    session.commit()
    return job_id
