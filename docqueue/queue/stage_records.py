"""Stage records: one row per stage of each run, kept beside the queue's transitions.

Rules this module keeps:

- A run's records are made with its queue item (`enqueue`), one `pending`
  row per stage from its start stage on.
- Every queue transition updates the record of the stage it concerns in the
  SAME statement (the fragments below are CTEs the queue service puts into
  its transitions), so a record never disagrees with its job: claim →
  `running` (attempts + 1); hand-on or completion → `completed`; a failed or
  recovered attempt → `pending` again (retrying, with the error) or `failed`;
  requeue → `pending`.
- A stage writes its own units and checkpoint only while its claim holds
  (`report_units` locks the job row as `hold_lease` does, or raises
  LeaseLost, in the transaction that commits the batch), so a checkpoint
  never runs ahead of the rows it stands for.
- A stage that has nothing to do, or is switched off, is `skipped` with the
  reason (`skip`); the hand-on that follows leaves it so.
- The document's progress only moves forward within a run (`GREATEST`).

Functions run inside the caller's transaction and never commit. What the API
and the document page read of the records is in `stage_record_reads`.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from docqueue.jobs import Claim, LeaseLost
from docqueue.queue.lease import HOLDS_LEASE, claim_params
from docqueue.statuses import AttemptOutcome, QueueStatus, StageStatus

# -- fragments for the queue service's transitions ---------------------------------
# Each takes the name of a CTE of the transition's statement; parameters are named in the docstrings.


def created(source: str) -> str:
    """INSERT the pending records of the new runs CTE `source` returns (`id`, `document_id`).

    Parameter `:record_stages`: the run's stage names in pipeline order.
    """
    return f"""
        INSERT INTO document_stage_records (job_id, document_id, stage, position)
        SELECT {source}.id, {source}.document_id, s.name, s.position
        FROM {source}, unnest(CAST(:record_stages AS text[])) WITH ORDINALITY AS s(name, position)"""


def started(source: str) -> str:
    """Mark running the record of the stage CTE `source` (`id`, `stage`) claimed: one attempt more."""
    return f"""
        UPDATE document_stage_records r SET status = '{StageStatus.RUNNING}', attempts = r.attempts + 1,
               started_at = COALESCE(r.started_at, now()), finished_at = NULL, error = NULL
        FROM {source} WHERE r.job_id = {source}.id AND r.stage = {source}.stage"""


def finished(source: str) -> str:
    """Mark completed the record of stage `:stage` of the job CTE `source` (`id`) moved on from.

    A record the stage marked `skipped` stays so: only a running one completes.
    """
    return f"""
        UPDATE document_stage_records r SET status = '{StageStatus.COMPLETED}', finished_at = now(), error = NULL
        FROM {source} WHERE r.job_id = {source}.id AND r.stage = :stage AND r.status = '{StageStatus.RUNNING}'"""


def attempt_failed(source: str) -> str:
    """Record a failed attempt of the jobs CTE `source` returns (`id`, `stage`, `status`, `error_message`).

    A job sent back to `pending` will retry the stage: its record is pending
    again and keeps the error; a failed job's record is failed.
    """
    return f"""
        UPDATE document_stage_records r SET
               status = CASE {source}.status WHEN '{QueueStatus.FAILED}' THEN '{StageStatus.FAILED}' ELSE '{StageStatus.PENDING}' END,
               finished_at = CASE {source}.status WHEN '{QueueStatus.FAILED}' THEN now() END,
               error = {source}.error_message
        FROM {source} WHERE r.job_id = {source}.id AND r.stage = {source}.stage"""


def requeued(source: str) -> str:
    """Make pending again the failed records of the jobs CTE `source` returns (`id`, `stage`)."""
    return f"""
        UPDATE document_stage_records r SET status = '{StageStatus.PENDING}', finished_at = NULL, error = NULL
        FROM {source} WHERE r.job_id = {source}.id AND r.stage = {source}.stage AND r.status = '{StageStatus.FAILED}'"""


# -- what a running stage writes (under its held lease) ------------------------------

# Only the claimed stage's running record may move, and only while the claim holds the job's lease.
_RUNNING_RECORD = f"r.job_id = :job_id AND r.stage = :stage AND r.status = '{StageStatus.RUNNING}'"


def report_units(
    session: Session,
    claim: Claim,
    *,
    added: int,
    total: int,
    unit: str,
    checkpoint: int,
    progress_before: int,
    progress_weight: int,
) -> None:
    """Check the claim's lease, count `added` more units done of `total`, move the checkpoint to `checkpoint`,
    and the document's progress: one statement; LeaseLost if the claim no longer holds the job.

    Call it first in the transaction that writes those units' rows: like
    `hold_lease` it locks the job row (FOR SHARE) until that transaction
    ends, so recovery cannot take the job away before the rows commit, and
    the rows and the report commit together or not at all. The document's
    progress becomes `progress_before + progress_weight * done / total`
    (percent) if that is more than it shows: it never goes back. Several
    processes working on ranges of one stage may call it at once: units add
    up and the checkpoint only grows.
    """
    held = session.execute(
        text(
            f"""
            WITH lease AS (
                SELECT id FROM document_queue WHERE {HOLDS_LEASE} FOR SHARE
            ), reported AS (
                UPDATE document_stage_records r SET units_done = r.units_done + :added, units_total = :total,
                       unit = :unit, checkpoint = GREATEST(r.checkpoint, :checkpoint)
                FROM lease WHERE {_RUNNING_RECORD} AND r.job_id = lease.id
                RETURNING r.document_id, r.units_done, r.units_total
            ), progressed AS (
                UPDATE documents d SET updated_at = now(), progress = GREATEST(d.progress, LEAST(100,
                       :before + :weight * reported.units_done / NULLIF(reported.units_total, 0)))
                FROM reported WHERE d.id = reported.document_id
            )
            SELECT count(*) FROM lease
            """
        ),
        {
            **claim_params(claim),
            "stage": claim.stage,
            "added": added,
            "total": total,
            "unit": unit,
            "checkpoint": checkpoint,
            "before": progress_before,
            "weight": progress_weight,
        },
    ).scalar()
    if not held:
        raise LeaseLost(f"job {claim.job_id} stage {claim.stage} attempt {claim.attempt} lost its lease")


def skip(session: Session, claim: Claim, reason: str) -> None:
    """Mark the claimed stage skipped, saying why; raises LeaseLost if its record is no longer running."""
    _end_running(session, claim, "skipped", reason)


def fail_optional(session: Session, claim: Claim, message: str) -> None:
    """Mark the claimed optional stage failed for good, saying why; the run goes on without it.

    Call after `hold_lease`, in the transaction that hands the run on; raises
    LeaseLost if the record is no longer running.
    """
    _end_running(session, claim, "failed", message)


def _end_running(session: Session, claim: Claim, status: str, why: str) -> None:
    """End the claimed stage's running record as `status` with `why` as its error; LeaseLost if none runs."""
    row = session.execute(
        text(
            f"""
            UPDATE document_stage_records r SET status = :status, finished_at = now(), error = :why
            WHERE {_RUNNING_RECORD} RETURNING 1
            """
        ),
        {"job_id": claim.job_id, "stage": claim.stage, "status": status, "why": why},
    ).first()
    if row is None:
        raise LeaseLost(f"job {claim.job_id} stage {claim.stage} is no longer running")


def skip_ahead(session: Session, claim: Claim, skipped: list[tuple[str, str]]) -> None:
    """Mark skipped, each with its reason, the later stages (name, reason) the claim's worker passes over.

    One statement; call after `hold_lease`. Only records still pending change.
    """
    ended_in_passing(session, claim, [], skipped)


def ended_in_passing(
    session: Session, claim: Claim, completed: list[tuple[str, tuple[str, int] | None]], skipped: list[tuple[str, str]]
) -> None:
    """End the records of later stages the claim's worker ran or passed over without claiming them: `completed`
    (name, (unit, how many) or None) ran within the claim (a small document's one pass), `skipped` (name,
    reason) had nothing to do.

    A stage that ran gets its attempt in the history as any claimed stage does, succeeded, with the claim's
    start and worker: its token is a fresh one, as no claim of its own was made. One statement; call after
    `hold_lease`. Only records still pending change.
    """
    if not completed and not skipped:
        return
    ended = [(name, StageStatus.COMPLETED.value, None, units) for name, units in completed]
    ended += [(name, StageStatus.SKIPPED.value, reason, None) for name, reason in skipped]
    session.execute(
        text(
            f"""
            WITH claimed AS (
                SELECT r.started_at, q.worker_id FROM document_stage_records r
                JOIN document_queue q ON q.id = r.job_id
                WHERE r.job_id = :job_id AND r.stage = :claimed
            ), ended AS (
                UPDATE document_stage_records r SET status = s.status, finished_at = now(), error = s.reason,
                       attempts = r.attempts + CASE s.status WHEN '{StageStatus.COMPLETED}' THEN 1 ELSE 0 END,
                       started_at = CASE s.status WHEN '{StageStatus.COMPLETED}' THEN claimed.started_at
                                    ELSE r.started_at END,
                       unit = COALESCE(s.unit, r.unit), units_done = COALESCE(s.units, r.units_done),
                       units_total = COALESCE(s.units, r.units_total), checkpoint = COALESCE(s.units, r.checkpoint)
                FROM unnest(CAST(:stages AS text[]), CAST(:statuses AS text[]), CAST(:reasons AS text[]),
                            CAST(:units AS text[]), CAST(:counts AS int[])) AS s (stage, status, reason, unit, units),
                     claimed
                WHERE r.job_id = :job_id AND r.stage = s.stage AND r.status = '{StageStatus.PENDING}'
                RETURNING r.document_id, r.stage, r.status, r.attempts, r.started_at
            )
            INSERT INTO stage_attempts (job_id, document_id, stage, attempt, worker_id, lease_token, outcome,
                                        started_at, finished_at, duration_ms)
            SELECT :job_id, ended.document_id, ended.stage, ended.attempts, claimed.worker_id, gen_random_uuid(),
                   '{AttemptOutcome.SUCCEEDED}', ended.started_at, now(),
                   (extract(epoch FROM now() - ended.started_at) * 1000)::bigint
            FROM ended, claimed WHERE ended.status = '{StageStatus.COMPLETED}'
            """
        ),
        {
            "job_id": claim.job_id,
            "claimed": claim.stage,
            "stages": [name for name, *_ in ended],
            "statuses": [status for _, status, _, _ in ended],
            "reasons": [reason for _, _, reason, _ in ended],
            "units": [units[0] if units else None for *_, units in ended],
            "counts": [units[1] if units else None for *_, units in ended],
        },
    )
