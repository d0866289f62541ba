"""Named SQL fragments the queue's transitions share, each with why it reads as it does.

Every statement that changes a queue item's state is built from these, in
`service.py` and its sibling modules, so a rule (who may publish, how a
document follows its queue item) is written once.
"""

from __future__ import annotations

from docqueue.queue import stage_records
from docqueue.queue.priority import priority_for_size_sql
from docqueue.statuses import (
    ACTIVE_QUEUE_STATUSES,
    DOCUMENT_STATUS_FOR,
    FINISHED_QUEUE_STATUSES,
    IN_FLIGHT_QUEUE_STATUSES,
    DocumentStatus,
    QueueStatus,
    sql_values,
)

# The queue's status sets as SQL list literals (`'pending', 'queued', 'processing'`), for `status IN (...)`.
# Literals, never bind parameters: Postgres uses a partial index (one live job per document, the in-flight
# index) only for a predicate it can read in the statement's text.
LIVE = sql_values(ACTIVE_QUEUE_STATUSES)
IN_FLIGHT = sql_values(IN_FLIGHT_QUEUE_STATUSES)
FINISHED = sql_values(FINISHED_QUEUE_STATUSES)

CLAIM_COLUMNS = "id, document_id, owner_id, operation, stage, attempts, max_attempts, lease_token::text"
CLAIM_FIELDS = ", ".join(f"claimed.{column.split('::')[0]}" for column in CLAIM_COLUMNS.split(", "))

# A claim's lease: a fresh fencing token, held by `:worker_id` until HEARTBEAT_TIMEOUT_SECONDS pass without a beat.
NEW_LEASE = (
    "heartbeat_at = now(), lease_expires_at = now() + make_interval(secs => :heartbeat_timeout), "
    "lease_token = gen_random_uuid(), worker_id = :worker_id"
)

# What a claim statement returns: the `Claim` of its `claimed` CTE, with what its time limit needs (the owner's
# per-stage limit, the document's size) and the stage's checkpoint, so that no stage asks for them in a
# statement of its own. (The statement's own CTEs do not change them: it sees them as they were.)
CLAIM_RESULT = (
    f"SELECT {CLAIM_FIELDS}, u.ocr_timeout_seconds, d.size_bytes, d.page_count, COALESCE(r.checkpoint, 0) "
    "FROM claimed JOIN users u ON u.id = claimed.owner_id JOIN documents d ON d.id = claimed.document_id "
    "LEFT JOIN document_stage_records r ON r.job_id = claimed.id AND r.stage = claimed.stage"
)

# An operator can pause admission (docqueue/queue/operator.py); running work carries on.
ADMISSION_OPEN = "NOT EXISTS (SELECT 1 FROM queue_control WHERE admission_paused)"


def not_held(table: str, stage: str | None = None) -> str:
    """SQL true unless an operator holds the lane of `table`'s row or its stage (`stage`, default its own).

    `queue/pausing.py` writes the rows; admission, the claim and the hand-on to a next stage each read them
    inside their one statement, so a hold takes effect at the next of them.
    """
    stage = stage or f"{table}.stage"
    return (
        "NOT EXISTS (SELECT 1 FROM paused_work held WHERE "
        f"(held.scope = 'lane' AND held.name = {table}.lane) OR (held.scope = 'stage' AND held.name = {stage}))"
    )


# Clears the lease columns when a job leaves `processing`.
RELEASE_LEASE = "lease_token = NULL, lease_expires_at = NULL, heartbeat_at = NULL, worker_id = NULL"


def documents_progress(source: str) -> str:
    """An UPDATE moving the documents of the queue rows in CTE `source` to `:progress`, never back."""
    return (
        "UPDATE documents d SET progress = GREATEST(d.progress, :progress), updated_at = now() "
        f"FROM {source} WHERE d.id = {source}.document_id"
    )


# The document's status for the queue status a CTE returns, from the one mapping in `statuses`.
_DOCUMENT_STATUS_CASE = (
    "CASE {source}.status "
    + " ".join(f"WHEN '{queue}' THEN '{document}'" for queue, document in DOCUMENT_STATUS_FOR.items())
    + " END"
)


def documents_follow(source: str, **assignments: str) -> str:
    """An UPDATE making the documents of the queue rows in CTE `source` show their state.

    `source` must return `document_id` and the queue row's new `status`;
    `assignments` are further columns to set, as SQL expressions.
    """
    columns = {"status": _DOCUMENT_STATUS_CASE.format(source=source), "updated_at": "now()", **assignments}
    sets = ", ".join(f"{column} = {value}" for column, value in columns.items())
    return f"UPDATE documents d SET {sets} FROM {source} WHERE d.id = {source}.document_id"


def failure_shown(source: str) -> str:
    """What the document says about a failed attempt of the queue rows in CTE `source`: the reason, and whether
    it will be tried again (`source` returns the new `status`, `error_message`, `attempts`, `max_attempts`)."""
    return (
        f"CASE {source}.status WHEN '{QueueStatus.FAILED}' THEN {source}.error_message "
        f"ELSE format('attempt %s of %s failed, retrying: %s', {source}.attempts, {source}.max_attempts, "
        f"{source}.error_message) END"
    )


# The one definition of a new queue row, for one upload (`enqueue`) or a whole ingest batch
# (`enqueue_many`): pending at `:stage`, the given priority or one by size, fresh attempts, no
# failure; the document follows, and the run's stage records are made (`:record_stages`).
# `:priorities` pairs with `:document_ids` (NULL: by size).
NEW_JOBS = f"""
    WITH queued AS (
        INSERT INTO document_queue
            (document_id, owner_id, operation, status, stage, priority, attempts, max_attempts, file_size, lane)
        SELECT d.id, d.owner_id, :operation, '{QueueStatus.PENDING}', :stage,
               COALESCE(new.priority, {priority_for_size_sql("d.size_bytes")}), 0, :max_attempts, d.size_bytes, :lane
        FROM unnest(CAST(:document_ids AS bigint[]), CAST(:priorities AS int[])) AS new (document_id, priority)
        JOIN documents d ON d.id = new.document_id
        ON CONFLICT (document_id) WHERE status IN ({LIVE}) DO NOTHING
        RETURNING id, document_id, status
    ), document AS (
        -- A new document already reads pending, 0 %, no error: only a reprocessed one needs the write.
        {documents_follow("queued", progress="0", error="NULL")}
          AND (d.status <> '{DocumentStatus.PENDING}' OR d.progress <> 0 OR d.error IS NOT NULL)
    ), records AS (
        {stage_records.created("queued")}
    )
    SELECT id FROM queued
"""
