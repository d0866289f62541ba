"""What a job is to everyone outside the queue: the claim a worker holds, the dispatch of a stage
message, what the queue's statements return, and the errors its transitions raise.

A leaf module: the stages, the worker and the web name these types without importing the queue.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


class AlreadyQueued(Exception):
    """The document already has a job that is pending or running."""


class LeaseLost(Exception):
    """The worker's claim no longer holds: another attempt owns the job now."""


@dataclass(frozen=True)
class Claim:
    """What a worker holds while it runs one stage of one job."""

    job_id: int
    document_id: int
    owner_id: int
    operation: str
    stage: str
    attempt: int
    max_attempts: int
    lease_token: str
    #: The owner's per-stage time limit.
    timeout_seconds: int
    #: The document's size, which scales its stages' time limits (`stages.time_limits`).
    size_bytes: int
    #: None until `inspect` has counted the pages.
    page_count: int | None
    #: The last unit the stage committed in earlier attempts of this run (0: none); a retry resumes after it.
    checkpoint: int
    #: (the document's progress before this stage, the stage's share), in percent: set by whoever runs the
    #: stage, which knows the pipeline (`docqueue.pipeline.progress_span`); the queue that made the claim does not.
    progress: tuple[int, int] = (0, 0)


@dataclass(frozen=True)
class PendingItem:
    id: int
    document_id: int
    owner_id: int
    operation: str
    priority: int
    created_at: datetime


@dataclass(frozen=True)
class Dispatch:
    """A queue item whose stage message must be sent after commit."""

    job_id: int
    stage: str
    #: Its owner, where the sender knows it: only jobs of one owner share a message (`dispatch.messages`).
    owner_id: int | None = None


@dataclass(frozen=True)
class RecoveryCounts:
    requeued: int
    failed: int


@dataclass(frozen=True)
class RequeueResult:
    """What `requeue_failed` did: how many went back, and what it left and why."""

    requeued: int
    #: (reason, number of documents) for failures that would only fail again.
    skipped: list[tuple[str, int]]
