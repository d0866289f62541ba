"""OCR ranges: a long scan's pages in ranges that any worker process may claim and read.

Rules this module keeps:

- The worker holding a job's OCR stage claim (the coordinator) plans the
  ranges of the pages still to read, under its lease, replacing those of any
  earlier attempt; each range names the coordinator's lease token.
- A range is taken with one conditional UPDATE that matches only a range
  that is pending (or abandoned, below) and whose job still holds that token
  at the OCR stage: a range of a lost or finished claim is never taken. The
  taker gets the coordinator's `Claim` and writes its pages under it
  (`committing_batch` holds that lease), so once the coordinator's lease is
  gone no page of any range lands.
- A running range whose worker has sent no heartbeat for
  HEARTBEAT_TIMEOUT_SECONDS is abandoned: anyone may take it again.
- Only the range's own worker finishes, fails or gives back a range
  (`worker_id` in each WHERE clause).

Functions run inside the caller's transaction and never commit.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.orm import Session

from docqueue.jobs import Claim, LeaseLost
from docqueue.queue.lease import HOLDS_LEASE, claim_params
from docqueue.settings import get_settings
from docqueue.statuses import OcrRangeStatus, QueueStatus

OCR_STAGE = "ocr"

# A range nobody is reading: waiting, or held by a worker whose heartbeats have stopped.
_TAKEABLE = f"""(r.status = '{OcrRangeStatus.PENDING}' OR (r.status = '{OcrRangeStatus.RUNNING}' AND NOT EXISTS (
    SELECT 1 FROM worker_heartbeats w WHERE w.worker_id = r.worker_id
    AND w.last_seen_at > now() - make_interval(secs => :heartbeat_timeout))))"""


@dataclass(frozen=True)
class TakenRange:
    """A range this worker now reads: its pages, under the coordinator's claim."""

    id: int
    pages: list[int]
    claim: Claim


@dataclass(frozen=True)
class RangeState:
    """Where a claim's ranges stand."""

    takeable: int
    running: int
    failed_error: str | None

    @property
    def finished(self) -> bool:
        return not self.takeable and not self.running


def plan(session: Session, claim: Claim, ranges: list[list[int]]) -> list[int]:
    """Replace the job's ranges with `ranges` of page numbers, under `claim`; their ids, in order.

    Call after `hold_lease`, in the same transaction.
    """
    session.execute(text("DELETE FROM ocr_ranges WHERE job_id = :job_id"), {"job_id": claim.job_id})
    rows = session.execute(
        text(
            """
            INSERT INTO ocr_ranges (job_id, lease_token, pages)
            SELECT :job_id, CAST(:lease_token AS uuid),
                   ARRAY(SELECT CAST(page AS int) FROM jsonb_array_elements_text(r.pages) AS page)
            FROM jsonb_array_elements(CAST(:ranges AS jsonb)) WITH ORDINALITY AS r (pages, n)
            ORDER BY r.n
            RETURNING id
            """
        ),
        {**claim_params(claim), "ranges": json.dumps(ranges)},
    )
    return [row.id for row in rows]


def take(
    session: Session, job_id: int, worker_id: str, *, range_id: int | None = None, limit: int = 1
) -> list[TakenRange]:
    """Take up to `limit` takeable ranges of the job's current OCR claim (only `range_id`, if given)."""
    rows = session.execute(
        text(
            f"""
            WITH taken AS (
                UPDATE ocr_ranges r SET status = '{OcrRangeStatus.RUNNING}', worker_id = :worker_id, claimed_at = now(), error = NULL
                WHERE r.id IN (
                    SELECT r.id FROM ocr_ranges r JOIN document_queue q ON q.id = r.job_id
                    WHERE r.job_id = :job_id AND q.lease_token = r.lease_token AND q.status = '{QueueStatus.PROCESSING}'
                      AND q.stage = :stage AND (CAST(:range_id AS bigint) IS NULL OR r.id = :range_id)
                      AND {_TAKEABLE}
                    ORDER BY r.id LIMIT :limit
                    FOR UPDATE OF r SKIP LOCKED)
                RETURNING r.id, r.pages, r.job_id
            )
            SELECT taken.id, taken.pages, q.id, q.document_id, q.owner_id, q.operation, q.stage, q.attempts,
                   q.max_attempts, q.lease_token::text, u.ocr_timeout_seconds, d.size_bytes, d.page_count,
                   COALESCE(s.checkpoint, 0)
            FROM taken JOIN document_queue q ON q.id = taken.job_id JOIN users u ON u.id = q.owner_id
                JOIN documents d ON d.id = q.document_id
                LEFT JOIN document_stage_records s ON s.job_id = q.id AND s.stage = q.stage
            ORDER BY taken.id
            """
        ),
        {
            "job_id": job_id,
            "worker_id": worker_id,
            "range_id": range_id,
            "limit": limit,
            "stage": OCR_STAGE,
            "heartbeat_timeout": get_settings().heartbeat_timeout_seconds,
        },
    )
    return [TakenRange(row[0], list(row[1]), Claim(*row[2:])) for row in rows]


def _end(session: Session, taken: TakenRange, worker_id: str, status: str, error: str | None = None) -> None:
    session.execute(
        text(
            f"""
            UPDATE ocr_ranges SET status = CAST(:status AS text), error = :error,
                   finished_at = CASE WHEN CAST(:status AS text) = '{OcrRangeStatus.PENDING}' THEN NULL ELSE now() END,
                   worker_id = CASE WHEN CAST(:status AS text) = '{OcrRangeStatus.PENDING}' THEN NULL ELSE worker_id END
            WHERE id = :id AND worker_id = :worker_id AND status = '{OcrRangeStatus.RUNNING}'
            """
        ),
        {"id": taken.id, "worker_id": worker_id, "status": status, "error": error},
    )


def finish(session: Session, taken: TakenRange, worker_id: str) -> None:
    """Every page of the range is read and committed."""
    _end(session, taken, worker_id, "done")


def fail(session: Session, taken: TakenRange, worker_id: str, error: str) -> None:
    """The range cannot be read: the coordinator fails the stage with `error`."""
    _end(session, taken, worker_id, "failed", error)


def give_back(session: Session, taken: TakenRange, worker_id: str) -> None:
    """This worker stops (it is shutting down): the range waits for someone else."""
    _end(session, taken, worker_id, "pending")


def drop_pending(session: Session, claim: Claim) -> None:
    """The claim's reading has ended (failed, stopped, timed out): its ranges nobody took are not kept."""
    session.execute(
        text(
            "DELETE FROM ocr_ranges WHERE job_id = :job_id AND lease_token = CAST(:lease_token AS uuid) "
            f"AND status = '{OcrRangeStatus.PENDING}'"
        ),
        claim_params(claim),
    )


def state(session: Session, claim: Claim) -> RangeState:
    """Where the claim's ranges stand; raises LeaseLost if the claim no longer holds."""
    row = session.execute(
        text(
            f"""
            SELECT count(*) FILTER (WHERE {_TAKEABLE}) AS takeable,
                   count(*) FILTER (WHERE r.status = '{OcrRangeStatus.RUNNING}' AND NOT {_TAKEABLE}) AS running,
                   min(r.error) FILTER (WHERE r.status = '{OcrRangeStatus.FAILED}') AS failed_error,
                   EXISTS (SELECT 1 FROM document_queue WHERE {HOLDS_LEASE}) AS held
            FROM ocr_ranges r WHERE r.job_id = :job_id AND r.lease_token = CAST(:lease_token AS uuid)
            """
        ),
        {**claim_params(claim), "heartbeat_timeout": get_settings().heartbeat_timeout_seconds},
    ).one()
    if not row.held:
        raise LeaseLost(f"job {claim.job_id} lost its lease while its OCR ranges were being read")
    return RangeState(row.takeable, row.running, row.failed_error)
