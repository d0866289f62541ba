"""The AI calls a run sent, on its queue row: what MAX_AI_CALLS_PER_DOCUMENT is checked against."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session


def spent(session: Session, job_id: int) -> int:
    """Requests run `job_id`'s AI stages sent and committed the answers of."""
    return session.execute(text("SELECT ai_calls FROM document_queue WHERE id = :id"), {"id": job_id}).scalar() or 0


def count(session: Session, job_id: int, calls: int) -> None:
    """Add `calls` to run `job_id`'s count, in the transaction that stores their answers."""
    session.execute(
        text("UPDATE document_queue SET ai_calls = ai_calls + :calls WHERE id = :id"), {"id": job_id, "calls": calls}
    )
