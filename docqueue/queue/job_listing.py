"""Reading jobs for the admin page: the filtered list, one job's detail and history.

Filters come from a URL's query string and are validated as a whole
(`JobFilter.from_args`): a bad value raises FilterError naming it. The list is
newest first with keyset pagination on the id (`before`), so a page costs
the same at any depth of a million-row table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.orm import Session

from docqueue.statuses import OPERATIONS, FailureKind, QueueStatus

#: Time windows the list offers, in hours.
WINDOWS = {"1h": 1, "24h": 24, "7d": 24 * 7, "30d": 24 * 30}
PAGE_SIZE = 50


class FilterError(ValueError):
    """A filter value is not one the list accepts; the message names it."""


@dataclass(frozen=True)
class JobFilter:
    """The jobs list's filters; empty strings mean "any"."""

    status: str = ""
    stage: str = ""
    operation: str = ""
    user: str = ""
    priority: str = ""
    error: str = ""
    window: str = ""
    #: An import run's id: the jobs of the documents it added.
    run: str = ""

    @classmethod
    def from_args(cls, args, stage_names: Sequence[str]) -> JobFilter:
        """Build from a query-string mapping, refusing unknown or malformed values (a stage not in `stage_names`)."""
        values = {field.name: (args.get(field.name) or "").strip() for field in fields(cls)}
        job_filter = cls(**values)
        job_filter._validate(stage_names)
        return job_filter

    def _validate(self, stage_names: Sequence[str]) -> None:
        if self.status and self.status not in set(QueueStatus):
            raise FilterError(f"status must be one of {', '.join(QueueStatus)}")
        if self.stage and self.stage not in stage_names:
            raise FilterError(f"stage must be one of {', '.join(stage_names)}")
        if self.operation and self.operation not in OPERATIONS:
            raise FilterError(f"operation must be one of {', '.join(OPERATIONS)}")
        if self.priority and not (
            self.priority.isascii() and self.priority.isdigit() and 0 <= int(self.priority) <= 100
        ):
            raise FilterError("priority must be a whole number from 0 to 100")
        if self.run and not (self.run.isascii() and self.run.isdigit() and 0 < int(self.run) < 2**63):
            raise FilterError("run must be an import run's number")
        if self.window and self.window not in WINDOWS:
            raise FilterError(f"window must be one of {', '.join(WINDOWS)}")
        if len(self.user) > 320 or len(self.error) > 500:
            raise FilterError("user or error text is too long")
        if "\x00" in self.user + self.error:
            raise FilterError("filters cannot contain NUL characters")

    def as_args(self) -> dict[str, str]:
        """The filters that are set, for building URLs."""
        return {field.name: getattr(self, field.name) for field in fields(self) if getattr(self, field.name)}

    def describe(self) -> str:
        """The filter in words, for previews and the audit log."""
        return ", ".join(f"{name}={value}" for name, value in self.as_args().items()) or "no filter"

    def where_clause(self) -> tuple[str, dict]:
        """SQL over `document_queue q JOIN users u` and its parameters; "TRUE" when nothing is set."""
        clauses, params = [], {}
        for name in ("status", "stage", "operation"):
            if getattr(self, name):
                clauses.append(f"q.{name} = :f_{name}")
                params[f"f_{name}"] = getattr(self, name)
        if self.priority:
            clauses.append("q.priority = :f_priority")
            params["f_priority"] = int(self.priority)
        if self.user:
            # Resolved to the owner's id first, so the owner index serves the list.
            clauses.append("q.owner_id = (SELECT id FROM users WHERE email = :f_user)")
            params["f_user"] = self.user.lower()
        if self.error:
            # Matched as plain text, case-insensitively: the user's %, _ and \ are escaped, not wildcards.
            # In this form the trigram index of migration 0011 serves it where pg_trgm is installed;
            # elsewhere it is a scan.
            clauses.append("lower(q.error_message) LIKE lower(:f_error) ESCAPE '\\'")
            params["f_error"] = "%" + _like_escaped(self.error) + "%"
        if self.run:
            clauses.append("q.document_id IN (SELECT id FROM documents WHERE ingest_run_id = :f_run)")
            params["f_run"] = int(self.run)
        if self.window:
            clauses.append("q.created_at >= now() - make_interval(hours => :f_hours)")
            params["f_hours"] = WINDOWS[self.window]
        return " AND ".join(clauses) or "TRUE", params


def _like_escaped(value: str) -> str:
    """`value` as a LIKE pattern that matches it literally, with backslash as the escape character."""
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@dataclass(frozen=True)
class JobRow:
    id: int
    document_id: int
    filename: str
    owner: str
    operation: str
    status: str
    stage: str
    priority: int
    attempts: int
    max_attempts: int
    created_at: datetime
    heartbeat_at: datetime | None
    worker_id: str | None
    error_message: str | None
    #: The last failure's FailureKind value: a permanent one is retried only "anyway".
    failure_kind: str | None
    #: When a pending job may run: its next try, while it backs off after a transient failure.
    run_after: datetime

    @property
    def will_fail_again(self) -> bool:
        """Whether this failed job's failure would repeat on another try (the file is the problem, or a bug)."""
        return self.status == QueueStatus.FAILED and self.failure_kind == FailureKind.PERMANENT


_ROW_COLUMNS = """
    q.id, q.document_id, d.filename, u.email AS owner, q.operation, q.status, q.stage, q.priority, q.attempts,
    q.max_attempts, q.created_at, q.heartbeat_at, q.worker_id, q.error_message, q.failure_kind, q.run_after
"""


def list_jobs(
    session: Session,
    job_filter: JobFilter,
    *,
    owner_id: int | None = None,
    before: int | None = None,
    limit: int = PAGE_SIZE,
) -> list[JobRow]:
    """A page of jobs matching the filter, newest first, with ids below `before`; only `owner_id`'s if given."""
    where, params = job_filter.where_clause()
    rows = session.execute(
        text(
            f"""
            SELECT {_ROW_COLUMNS}
            FROM document_queue q JOIN users u ON u.id = q.owner_id JOIN documents d ON d.id = q.document_id
            WHERE {where} AND (CAST(:owner_id AS bigint) IS NULL OR q.owner_id = :owner_id)
              AND (CAST(:before AS bigint) IS NULL OR q.id < :before)
            ORDER BY q.id DESC LIMIT :limit
            """
        ),
        {**params, "owner_id": owner_id, "before": before, "limit": limit},
    )
    return [JobRow(*row) for row in rows]


@dataclass(frozen=True)
class JobEventRow:
    at: datetime
    from_status: str
    to_status: str
    stage: str
    attempt: int
    worker_id: str | None
    error_message: str | None
    traceback: str | None


@dataclass(frozen=True)
class JobDetail:
    job: JobRow
    started_at: datetime | None
    completed_at: datetime | None
    lease_expires_at: datetime | None
    heartbeat_age_seconds: float | None
    processing_time_ms: int | None
    events: list[JobEventRow]


def job_detail(session: Session, job_id: int, *, owner_id: int | None = None) -> JobDetail | None:
    """One job with its timeline of status changes; None if missing (or not `owner_id`'s)."""
    row = session.execute(
        text(
            f"""
            SELECT {_ROW_COLUMNS}, q.started_at, q.completed_at, q.lease_expires_at,
                   extract(epoch FROM now() - q.heartbeat_at) AS heartbeat_age, q.processing_time_ms
            FROM document_queue q JOIN users u ON u.id = q.owner_id JOIN documents d ON d.id = q.document_id
            WHERE q.id = :job_id AND (CAST(:owner_id AS bigint) IS NULL OR q.owner_id = :owner_id)
            """
        ),
        {"job_id": job_id, "owner_id": owner_id},
    ).first()
    if row is None:
        return None
    events = session.execute(
        text(
            "SELECT at, from_status, to_status, stage, attempt, worker_id, error_message, traceback "
            "FROM job_events WHERE job_id = :job_id ORDER BY id"
        ),
        {"job_id": job_id},
    )
    columns = len(fields(JobRow))
    return JobDetail(
        job=JobRow(*row[:columns]),
        started_at=row.started_at,
        completed_at=row.completed_at,
        lease_expires_at=row.lease_expires_at,
        heartbeat_age_seconds=float(row.heartbeat_age) if row.heartbeat_age is not None else None,
        processing_time_ms=row.processing_time_ms,
        events=[JobEventRow(*event) for event in events],
    )


def document_jobs(session: Session, document_id: int) -> list[tuple[int, str, str]]:
    """(job id, status, stage) of every job a document has had, newest first."""
    rows = session.execute(
        text("SELECT id, status, stage FROM document_queue WHERE document_id = :document_id ORDER BY id DESC"),
        {"document_id": document_id},
    )
    return [tuple(row) for row in rows]
