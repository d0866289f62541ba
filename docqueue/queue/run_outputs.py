"""Outputs of a run: keyed by the run's job id, shown once the run completes, replaced whole.

Rules this module keeps:

- Every output row a stage writes carries the run's `job_id` (and its
  `document_id`); blobs live under `run_blob_prefix(document_id, job_id)`.
- Readers see the outputs of the document's last completed run
  (`documents.results_job_id`, set by `mark_completed` in the statement that
  completes the job). Until a first run completes they see the newest run's
  outputs marked incomplete (`ResultsRun.complete` is False).
- When a run completes, `retire_older_runs` deletes every other run's
  outputs in the same transaction: a reader sees the old set or the new
  one, never a mix. It is one statement, and a document's only run (the
  usual case) costs it no more than a look at the document's queue rows.

Functions run inside the caller's transaction and never commit.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.orm import Session

#: Tables of per-run outputs: each has `document_id` and `job_id` columns. A new output table is added here.
RUN_OUTPUT_TABLES: tuple[str, ...] = (
    "document_pages",
    "document_enrichments",
    "document_chunks",
    "document_images",
)


def run_blob_prefix(document_id: int, job_id: int) -> str:
    """Where a run's blobs live (e.g. its searchable PDF): `documents/<id>/runs/<job>/`."""
    return f"documents/{document_id}/runs/{job_id}/"


@dataclass(frozen=True)
class ResultsRun:
    """Which run's outputs to show, and whether that run completed."""

    job_id: int | None
    complete: bool


def results_run(session: Session, document_id: int) -> ResultsRun:
    """The run whose outputs a reader sees: the last completed one, else the newest (incomplete)."""
    row = session.execute(
        text(
            """
            SELECT d.results_job_id, (SELECT max(q.id) FROM document_queue q WHERE q.document_id = d.id) AS newest
            FROM documents d WHERE d.id = :document_id
            """
        ),
        {"document_id": document_id},
    ).first()
    if row is None:
        return ResultsRun(None, False)
    if row.results_job_id is not None:
        return ResultsRun(row.results_job_id, True)
    return ResultsRun(row.newest, False)


def retire_older_runs(session: Session, document_id: int, job_id: int) -> None:
    """Delete the outputs of the document's runs other than `job_id`; call in the transaction completing it.

    One statement. Output rows go with their run's queue row (ON DELETE
    CASCADE), so when the document has no other queue row there are none to
    delete, and each row DELETE is skipped whole (a one-time filter) rather
    than run. Blobs are not tied to the queue row (a run's can outlive it),
    so their DELETE always runs: a range scan of the document's run prefix.
    """
    others = "(SELECT found FROM others)"
    deletes = ",\n".join(
        f"{table} AS (DELETE FROM {table} WHERE document_id = :document_id AND job_id <> :job_id AND {others})"
        for table in RUN_OUTPUT_TABLES
    )
    # Blob keys of runs are `documents/<id>/runs/<job>/...`; keep the completing run's. The range lets the
    # key's index find them (LIKE alone uses it only under the C collation); LIKE keeps the match exact.
    runs = f"documents/{document_id}/runs/"
    session.execute(
        text(
            f"""
            WITH others AS MATERIALIZED (
                SELECT EXISTS (SELECT 1 FROM document_queue WHERE document_id = :document_id AND id <> :job_id)
                       AS found
            ),
            {deletes}
            DELETE FROM blob_chunks WHERE blob_key >= :runs AND blob_key < :past_runs
                AND blob_key LIKE :runs_pattern AND blob_key NOT LIKE :kept_pattern
            """
        ),
        {
            "document_id": document_id,
            "job_id": job_id,
            "runs": runs,
            "past_runs": runs[:-1] + "0",  # '0' is the character after '/'
            "runs_pattern": runs + "%",
            "kept_pattern": run_blob_prefix(document_id, job_id) + "%",
        },
    )
