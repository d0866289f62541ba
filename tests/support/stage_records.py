"""Helpers for driving one document's job stage by stage and reading its per-stage records."""

from __future__ import annotations

from dataclasses import replace

import sqlalchemy as sa

from docqueue.pipeline import progress_span
from docqueue.queue import DocumentQueueService
from docqueue.runtime.worker_identity import current_worker_id
from docqueue.worker import stage_runner
from docqueue.worker.stage_runner import run_stage


def records(session, job_id: int) -> dict[str, sa.Row]:
    rows = session.execute(
        sa.text("SELECT * FROM document_stage_records WHERE job_id = :j ORDER BY position"), {"j": job_id}
    ).all()
    return {row.stage: row for row in rows}


def admit(session, document_id: int) -> int:
    """Admit the document's pending job; return its id."""
    DocumentQueueService(session).admit_pending()
    session.commit()
    return job_for_newest(session, document_id).id


def claim_next(session, document_id: int):
    """Admit the document's job and claim its current stage here, as a worker would."""
    admit(session, document_id)
    job = job_for_newest(session, document_id)
    claim = DocumentQueueService(session).claim(job.id, job.stage, current_worker_id())
    session.commit()
    assert claim is not None
    # The worker gives each claim its stage's span of the document's progress (stage_work.claimed).
    return replace(claim, progress=progress_span(claim.stage))


def job_for_newest(session, document_id: int) -> sa.Row:
    return session.execute(
        sa.text("SELECT * FROM document_queue WHERE document_id = :d ORDER BY id DESC LIMIT 1"), {"d": document_id}
    ).one()


def inspect_alone(session, document_id: int, monkeypatch) -> None:
    """Run only the inspect stage of the document's admitted job, as a worker that is shutting down does:
    it hands the job on to `extract_text` by message instead of going on with it (and without the one pass,
    which would run the later stages with it)."""
    with monkeypatch.context() as patch:
        patch.setattr(stage_runner, "goes_on", lambda stage, following: False)
        patch.setattr(stage_runner, "takes_one_pass", lambda stage, claim: False)
        assert run_stage("inspect", admit(session, document_id)) == "done"
    assert job_for_newest(session, document_id).stage == "extract_text"


def page_versions(session, job_id: int) -> dict[int, str]:
    """Each page row's xmin: it changes whenever the row is rewritten."""
    rows = session.execute(
        sa.text("SELECT page_number, xmin::text FROM document_pages WHERE job_id = :j"), {"j": job_id}
    ).all()
    return dict(rows)
