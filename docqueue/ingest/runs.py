"""The record of each ingest run in Postgres: counts, start, end, and every rejected file with its reason.

A run's counts move in the same transaction as each batch it commits, so
they always say what is really stored, even after a kill. A run killed
outright stops its heartbeat (`heartbeat.RunHeartbeat`): the clock then
marks it `abandoned`, `finished_at` at its last beat.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from docqueue.ingest.walk import Rejection
from docqueue.models import IngestRejection, IngestRun, User
from docqueue.settings import get_settings
from docqueue.statuses import IngestRunStatus
from docqueue.text_cleaning import shown_name


@dataclass
class BatchResult:
    """What one committed batch of an import added, skipped as duplicates and rejected."""

    added: int = 0
    bytes_added: int = 0
    duplicates: int = 0
    rejections: list[Rejection] = field(default_factory=list)


def start_run(session: Session, owner_id: int, source: str, paths: Iterable[str]) -> int:
    """Record a new run as `running` and commit; return its id."""
    run = IngestRun(owner_id=owner_id, source=source, paths="\n".join(map(shown_name, paths)))
    session.add(run)
    session.commit()
    return run.id


def record_batch(session: Session, run_id: int, batch: BatchResult, seen: int) -> None:
    """Add a batch's counts and rejected files to the run, in one statement of the batch's transaction."""
    session.execute(
        text(
            """
            WITH run AS (
                UPDATE ingest_runs SET files_seen = files_seen + :seen, files_added = files_added + :added,
                       bytes_added = bytes_added + :bytes_added, duplicates = duplicates + :duplicates,
                       rejected = rejected + :rejected, updated_at = now()
                WHERE id = :run_id
                RETURNING rejected - :rejected AS rejected_before
            )
            INSERT INTO ingest_rejections (run_id, seq, path, reason)
            SELECT :run_id, run.rejected_before + r.ord, r.path, r.reason
            FROM run, unnest(CAST(:paths AS text[]), CAST(:reasons AS text[])) WITH ORDINALITY AS r (path, reason, ord)
            """
        ),
        {
            "run_id": run_id,
            "seen": seen,
            "added": batch.added,
            "bytes_added": batch.bytes_added,
            "duplicates": batch.duplicates,
            "rejected": len(batch.rejections),
            "paths": [rejection.display for rejection in batch.rejections],
            "reasons": [rejection.reason for rejection in batch.rejections],
        },
    )


def finish_run(session: Session, run_id: int, status: IngestRunStatus) -> IngestRun:
    """Mark the run finished with `status` and commit; return it."""
    session.execute(
        text("UPDATE ingest_runs SET status = :status, finished_at = now(), updated_at = now() WHERE id = :run_id"),
        {"run_id": run_id, "status": status.value},
    )
    session.commit()
    return session.get(IngestRun, run_id, populate_existing=True)


def mark_abandoned(session: Session) -> int:
    """Mark `abandoned` every running run whose heartbeat is older than HEARTBEAT_TIMEOUT_SECONDS; commit; how many."""
    marked = session.execute(
        text(
            """
            UPDATE ingest_runs SET status = :abandoned, finished_at = updated_at
            WHERE status = :running AND updated_at < statement_timestamp() - make_interval(secs => :timeout)
            """
        ),
        {
            "abandoned": IngestRunStatus.ABANDONED.value,
            "running": IngestRunStatus.RUNNING.value,
            "timeout": get_settings().heartbeat_timeout_seconds,
        },
    ).rowcount
    session.commit()
    return marked


def recent_runs(session: Session, limit: int = 50) -> list[tuple[IngestRun, str]]:
    """The newest runs with their owner's email, newest first."""
    rows = session.execute(
        select(IngestRun, User.email)
        .join(User, User.id == IngestRun.owner_id)
        .order_by(IngestRun.started_at.desc(), IngestRun.id.desc())
        .limit(limit)
    )
    return [(run, email) for run, email in rows]


def run_rejections(session: Session, run_id: int, limit: int | None = None) -> list[IngestRejection]:
    """The run's rejected files in the order they were found."""
    query = select(IngestRejection).where(IngestRejection.run_id == run_id).order_by(IngestRejection.seq)
    return list(session.scalars(query.limit(limit) if limit else query))


#: A cell starting with one of these is a formula to a spreadsheet (OWASP's "CSV injection").
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _spreadsheet_cell(value: str) -> str:
    """The value as `shown_name` shows it (rows recorded before names were cleaned may hold a bidi override),
    with a leading quote if a spreadsheet would run it: a file may be named `=HYPERLINK(...)`."""
    value = shown_name(value)
    return "'" + value if value.startswith(_FORMULA_STARTS) else value


def write_rejections_csv(rows: Iterable[tuple[str, str]], target) -> int:
    """Write (path, reason) rows under a header to the open text file `target`; return how many."""
    writer = csv.writer(target)
    writer.writerow(["path", "reason"])
    count = 0
    for path, reason in rows:
        writer.writerow([_spreadsheet_cell(path), _spreadsheet_cell(reason)])
        count += 1
    return count
