"""The Postgres-backed job queue: every state transition of a job.

What the queue's statements take and return (`Claim`, `Dispatch`, `LeaseLost`...) lives in
`docqueue.jobs`, below everything, so the stages and the worker can name them without the queue.
"""

from docqueue.queue import ai_calls, run_outputs, stage_record_reads, stage_records
from docqueue.queue.priority import priority_for_size
from docqueue.queue.service import DocumentQueueService

__all__ = [
    "DocumentQueueService",
    "ai_calls",
    "priority_for_size",
    "run_outputs",
    "stage_record_reads",
    "stage_records",
]
