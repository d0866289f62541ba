"""The attempt history: one row per claim of a stage, closed with how it ended.

Rules:

- A row is opened by the statement that claims the stage (`opened`) and
  closed in the transaction of the transition that ends the attempt (a
  hand-on's own statement: `succeeded`) (published, failed,
  taken back by the clock, handed back on shutdown), so the history never
  disagrees with the queue.
- An attempt is named by its claim's fencing token, which is unique.
- Only a `running` row is closed: whoever ends the attempt first writes its
  outcome, and a worker that lost its lease cannot overwrite it.
- Its owner reads it (the API), so `error_class` names the kind of failure
  in the product's words (`errors.failure_label`) and `error_message` is the
  message the document shows: a library's class, text and traceback go to
  the log and Sentry only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.orm import Session

from docqueue.errors import failure_label
from docqueue.statuses import AttemptOutcome

if TYPE_CHECKING:
    from docqueue.jobs import Claim

#: The kind of failure of an attempt the clock took back from a worker that stopped heartbeating.
WORKER_LOST = "worker lost"


# Closes running attempts; `{match}` says which (`{source}`: a table or CTE it joins, if any).
_CLOSE = f"""
    UPDATE stage_attempts a SET outcome = {{outcome}}, finished_at = now(),
           duration_ms = (extract(epoch FROM now() - a.started_at) * 1000)::bigint,
           error_class = {{error_class}}, error_message = {{error_message}}
    {{source}}
    WHERE a.outcome = '{AttemptOutcome.RUNNING}' AND {{match}}
"""


def closed_by_recovery(source: str) -> str:
    """An UPDATE closing, as lost, the attempts of the jobs in CTE `source` (which returns `old_token`).

    The clock's recovery runs it as a CTE of the statement that takes the jobs back.
    """
    return _CLOSE.format(
        outcome=f"'{AttemptOutcome.LOST}'",
        error_class=f"'{WORKER_LOST}'",
        error_message=f"{source}.error_message",
        source=f"FROM {source}",
        match=f"a.lease_token = {source}.old_token",
    )


#: What the owner of a job handed back to make room for another user's work reads in its attempt history.
MADE_ROOM = "another user's work waited for a slot: this document resumes when one frees"


def closed_to_make_room(source: str) -> str:
    """An UPDATE closing, as handed back, the attempts of the jobs in CTE `source` (which returns `old_token`) that
    the dispatcher handed back to make room (`DispatcherSteps.make_room`)."""
    return _CLOSE.format(
        outcome=f"'{AttemptOutcome.HANDED_BACK}'",
        error_class="NULL",
        error_message="'{}'".format(MADE_ROOM.replace("'", "''")),  # a constant, quoted as SQL
        source=f"FROM {source}",
        match=f"a.lease_token = {source}.old_token",
    )


def opened(source: str) -> str:
    """An INSERT opening the attempt of the claim CTE `source` returns (`id`, `document_id`, `stage`,
    `attempts`, `lease_token`) for `:worker_id`: the claim's own statement opens its attempt."""
    return f"""
        INSERT INTO stage_attempts (job_id, document_id, stage, attempt, worker_id, lease_token)
        SELECT {source}.id, {source}.document_id, {source}.stage, {source}.attempts, :worker_id,
               CAST({source}.lease_token AS uuid)
        FROM {source}"""


def succeeded(source: str) -> str:
    """An UPDATE closing as succeeded the attempt of claim `:lease_token` if the hand-on CTE `source` matched."""
    return _CLOSE.format(
        outcome=f"'{AttemptOutcome.SUCCEEDED}'",
        error_class="NULL",
        error_message="NULL",
        source=f"FROM {source}",
        match="a.lease_token = CAST(:lease_token AS uuid)",
    )


def close_attempt(
    session: Session,
    claim: Claim,
    outcome: AttemptOutcome,
    error: BaseException | None = None,
    message: str | None = None,
) -> None:
    """Record how the claim's attempt ended; call in the transaction of the transition that ends it.

    `message` is what the document's owner reads (never `str(error)`, which may name paths and internals).
    """
    session.execute(
        text(
            _CLOSE.format(
                outcome=":outcome",
                error_class=":error_class",
                error_message=":error_message",
                source="",
                match="a.lease_token = CAST(:lease_token AS uuid)",
            )
        ),
        {
            "outcome": outcome,
            "error_class": failure_label(error) if error is not None else None,
            "error_message": message,
            "lease_token": claim.lease_token,
        },
    )


def attempt_history(session: Session, document_id: int) -> list[dict]:
    """Every attempt at every stage of the document, oldest first, as the API shows them."""
    rows = session.execute(
        text(
            """
            SELECT job_id, stage, attempt, worker_id, outcome, started_at, finished_at, duration_ms,
                   error_class, error_message
            FROM stage_attempts WHERE document_id = :document_id ORDER BY id
            """
        ),
        {"document_id": document_id},
    )
    return [
        {
            "job_id": row.job_id,
            "stage": row.stage,
            "attempt": row.attempt,
            "worker": row.worker_id,
            "outcome": row.outcome,
            "started_at": row.started_at.isoformat(),
            "finished_at": row.finished_at.isoformat() if row.finished_at else None,
            "duration_ms": row.duration_ms,
            "error_class": row.error_class,
            "error_message": row.error_message,
        }
        for row in rows
    ]
