"""The Postgres schema: the source of truth for users, documents and the queue.

Plain SQLAlchemy declarative models, so the worker uses them without Flask;
the web wraps the same `Base` with Flask-SQLAlchemy and Alembic reads its
metadata. Schema changes go through a revision in `migrations/`.

One module per concern; importing this package imports them all, so
`Base.metadata` holds every table whichever model a caller names.
"""

from docqueue.models.accounts import AuditRecord, DailyPageUsage, User
from docqueue.models.base import MAX_ID, Base
from docqueue.models.documents import BlobChunk, Document, DocumentPage, IdempotencyKey
from docqueue.models.execution import OcrRange, StageAttempt, StageRecord, WorkerHeartbeat
from docqueue.models.ingest import IngestRejection, IngestRun
from docqueue.models.queue import FrozenSelection, JobEvent, PausedWork, QueueControl, QueueItem
from docqueue.models.results import CallbackDelivery, DocumentChunk, DocumentEnrichment, DocumentImage
from docqueue.models.stats import QueueDailyStats, QueueMinuteStats

__all__ = [
    "MAX_ID",
    "AuditRecord",
    "Base",
    "BlobChunk",
    "CallbackDelivery",
    "DailyPageUsage",
    "Document",
    "DocumentChunk",
    "DocumentEnrichment",
    "DocumentImage",
    "DocumentPage",
    "FrozenSelection",
    "IdempotencyKey",
    "IngestRejection",
    "IngestRun",
    "JobEvent",
    "OcrRange",
    "PausedWork",
    "QueueControl",
    "QueueDailyStats",
    "QueueItem",
    "QueueMinuteStats",
    "StageAttempt",
    "StageRecord",
    "User",
    "WorkerHeartbeat",
]
