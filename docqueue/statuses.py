"""Every status docqueue knows, in one place.

A queue item (`document_queue`) moves through `QueueStatus`; the document a
user sees shows the `DocumentStatus` its live queue item implies
(`DOCUMENT_STATUS_FOR`), written by the queue service beside each transition.
"""

from __future__ import annotations

from enum import StrEnum


class QueueStatus(StrEnum):
    """States of a queue item. The first migration's trigger allows only the moves ARCHITECTURE.md lists."""

    #: Waiting for the dispatcher: new, or backing off before a retry.
    PENDING = "pending"
    #: Admitted by the dispatcher; a stage message is on its way to a worker.
    QUEUED = "queued"
    #: A worker holds the lease.
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    #: Stopped by an operator: a running stage stops and publishes nothing.
    CANCELLED = "cancelled"


class DocumentStatus(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class FailureKind(StrEnum):
    """Why a stage attempt failed, which decides whether trying again can help."""

    #: Will fail the same way every time (the file is the problem, or a bug): fail at once.
    PERMANENT = "permanent"
    #: May pass later (a lost connection, a timeout talking to a service, 429/5xx): back off and retry.
    TRANSIENT = "transient"


class QueueLane(StrEnum):
    """Which admission lane a queue item waits in (see `DocumentQueueService.admit_pending`)."""

    #: Something a person is waiting for: an upload in the browser or over the API.
    INTERACTIVE = "interactive"
    #: An import (`docqueue ingest`, a folder upload): admitted after interactive work, never starved.
    BULK = "bulk"


class IngestRunStatus(StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    #: Stopped by Ctrl-C or a kill; a new run of the same paths adds what it did not.
    INTERRUPTED = "interrupted"
    FAILED = "failed"
    #: Killed outright (kill -9, a crash, a lost machine): it stopped beating; what it committed stays.
    ABANDONED = "abandoned"


class OcrStatus(StrEnum):
    UNKNOWN = "unknown"
    NOT_NEEDED = "not_needed"
    NEEDED = "needed"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"


class OcrRangeStatus(StrEnum):
    """States of one range of a scan's pages (`ocr_ranges`), claimed by any worker (`queue/ocr_ranges.py`)."""

    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class StageStatus(StrEnum):
    """States of one stage of one run (`document_stage_records`), written beside the queue transitions."""

    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    #: The stage had nothing to do or was switched off; its record says why.
    SKIPPED = "skipped"


class AttemptOutcome(StrEnum):
    """How one attempt at a stage ended (`stage_attempts`, `queue/attempts.py`)."""

    #: Claimed and not ended yet; only a running attempt is closed.
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    #: Failed; the job goes back to pending to try the stage again.
    RETRYING = "retrying"
    FAILED = "failed"
    #: Taken back by the clock from a worker that stopped heartbeating.
    LOST = "lost"
    #: Handed back unfinished: the worker shutting down, or the dispatcher making room.
    HANDED_BACK = "handed_back"


class CallbackStatus(StrEnum):
    """States of one callback delivery (`callback_deliveries`, `callbacks/deliveries.py`)."""

    #: Due now or after a backoff, or being sent (`sending_until`).
    PENDING = "pending"
    DELIVERED = "delivered"
    #: Out of attempts.
    FAILED = "failed"


ACTIVE_QUEUE_STATUSES = (QueueStatus.PENDING, QueueStatus.QUEUED, QueueStatus.PROCESSING)
IN_FLIGHT_QUEUE_STATUSES = (QueueStatus.QUEUED, QueueStatus.PROCESSING)
#: Over, one way or another: the rest.
FINISHED_QUEUE_STATUSES = (QueueStatus.COMPLETED, QueueStatus.FAILED, QueueStatus.CANCELLED)

#: The document's status while its newest queue item is in each state.
DOCUMENT_STATUS_FOR = {
    QueueStatus.PENDING: DocumentStatus.PENDING,
    QueueStatus.QUEUED: DocumentStatus.PENDING,
    QueueStatus.PROCESSING: DocumentStatus.PROCESSING,
    QueueStatus.COMPLETED: DocumentStatus.COMPLETED,
    QueueStatus.FAILED: DocumentStatus.FAILED,
    QueueStatus.CANCELLED: DocumentStatus.CANCELLED,
}

#: Account roles, each allowed everything the one before it is: viewers watch their own work,
#: operators watch and steer the whole queue, admins also manage accounts.
ROLES = ("viewer", "operator", "admin")

#: Why a run exists: an upload, a user's reprocess, or a user asking for OCR that was switched off;
#: `stage_retry`: a completed run whose owner asked to run one failed optional stage again (that stage alone).
OPERATIONS = ("process", "reprocess", "ocr", "stage_retry")
STAGE_RETRY = "stage_retry"


def sql_values(statuses) -> str:
    """`'a', 'b'` for an SQL `IN (...)` list of enum members."""
    return ", ".join(f"'{status}'" for status in statuses)
