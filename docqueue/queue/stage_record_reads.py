"""Reading stage records: what the API and the document page show of a run's stages.

The records are written by the queue's transitions (`stage_records`); this
module only reads them, inside the caller's session, and never commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.orm import Session


@dataclass(frozen=True)
class StageRecordView:
    """A stage record as the API and the document page show it."""

    job_id: int
    stage: str
    status: str
    attempts: int
    started_at: datetime | None
    finished_at: datetime | None
    unit: str | None
    units_done: int
    units_total: int | None
    checkpoint: int
    error: str | None

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return round((self.finished_at - self.started_at).total_seconds(), 3)

    def as_dict(self) -> dict:
        def iso(value):
            return value.isoformat() if value else None

        return {
            "stage": self.stage,
            "status": self.status,
            "attempts": self.attempts,
            "started_at": iso(self.started_at),
            "finished_at": iso(self.finished_at),
            "duration_seconds": self.duration_seconds,
            "unit": self.unit,
            "units_done": self.units_done,
            "units_total": self.units_total,
            "checkpoint": self.checkpoint,
            "error": self.error,
        }


def stage_completed(session: Session, job_id: int | None, stage: str) -> bool:
    """Whether stage `stage` of run `job_id` completed (not skipped, failed or still to come)."""
    if job_id is None:
        return False
    status = session.execute(
        text("SELECT status FROM document_stage_records WHERE job_id = :job_id AND stage = :stage"),
        {"job_id": job_id, "stage": stage},
    ).scalar()
    return status == "completed"


def latest_run_records(session: Session, document_id: int) -> list[StageRecordView]:
    """The stage records of the document's newest run, in pipeline order."""
    rows = session.execute(
        text(
            """
            SELECT job_id, stage, status, attempts, started_at, finished_at, unit, units_done, units_total,
                   checkpoint, error
            FROM document_stage_records
            WHERE job_id = (SELECT max(id) FROM document_queue WHERE document_id = :document_id)
            ORDER BY position
            """
        ),
        {"document_id": document_id},
    )
    return [StageRecordView(*row) for row in rows]
