"""The Postgres-backed job queue: every state transition of a queue item."""

from docqueue.queue import ai_calls, run_outputs, stage_records
from docqueue.queue.priority import priority_for_size
from docqueue.queue.service import DocumentQueueService
from docqueue.queue.values import AlreadyQueued, Claim, LeaseLost, RequeueResult

__all__ = [
    "AlreadyQueued",
    "Claim",
    "DocumentQueueService",
    "LeaseLost",
    "RequeueResult",
    "ai_calls",
    "priority_for_size",
    "run_outputs",
    "stage_records",
]
