"""Enrichment answers: what the chat provider said about a run's text and its images."""

from __future__ import annotations

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from docqueue.models import DocumentEnrichment

PRODUCT_DISCOVERY = "product_discovery"
VISION_DESCRIPTION = "vision_description"


def save_answers(
    session: Session, document_id: int, job_id: int, answers: list[tuple[str, int | None, str, str]]
) -> None:
    """Upsert run `job_id`'s answers [(kind, image id or None, model, answer)] in one statement."""
    statement = insert(DocumentEnrichment).values(
        [
            {
                "document_id": document_id,
                "job_id": job_id,
                "kind": kind,
                "image_id": image_id,
                "model": model,
                "answer": answer,
            }
            for kind, image_id, model, answer in answers
        ]
    )
    session.execute(
        statement.on_conflict_do_update(
            index_elements=[DocumentEnrichment.job_id, DocumentEnrichment.kind, text("COALESCE(image_id, 0)")],
            set_={"model": statement.excluded.model, "answer": statement.excluded.answer, "created_at": text("now()")},
        )
    )


def answered(session: Session, job_id: int, kind: str) -> set[int | None]:
    """Image ids (None for the text) run `job_id` already has `kind` answers for: a retry resumes after them."""
    rows = session.scalars(
        select(DocumentEnrichment.image_id).where(DocumentEnrichment.job_id == job_id, DocumentEnrichment.kind == kind)
    )
    return set(rows)


def list_answers(session: Session, job_id: int | None, after_id: int = 0, limit: int = 100) -> list[DocumentEnrichment]:
    """Up to `limit` of run `job_id`'s answers with id > `after_id`, in the order they were stored."""
    return list(
        session.scalars(
            select(DocumentEnrichment)
            .where(DocumentEnrichment.job_id == job_id, DocumentEnrichment.id > after_id)
            .order_by(DocumentEnrichment.id)
            .limit(limit)
        )
    )
