"""Offering an OCR job's page ranges to any worker with a free PDF process.

Dramatiq is imported by the function that sends: PDF processes import this
module (with every stage) but never send, and Dramatiq (with gevent, which
it looks for) would cost each ~2 MB.
"""

from __future__ import annotations

import logging

from docqueue.stages.stage import LANE_QUEUES, Lane

logger = logging.getLogger(__name__)


#: The actor that reads one OCR range (`actors/ocr_ranges.py`), on the CPU lane's queue.
OCR_RANGE_ACTOR = "ocr_range"


def send_ocr_range_messages(job_id: int, range_ids: list[int], delay_ms: int | None = None) -> None:
    """Offer each range of the job's OCR to any worker (after `delay_ms`); call after the ranges are committed.

    A lost message costs only speed: the OCR stage's own worker reads every
    range nobody took.
    """
    import dramatiq

    broker = dramatiq.get_broker()
    queue_name = LANE_QUEUES[Lane.CPU]
    for range_id in range_ids:
        message = dramatiq.Message(
            queue_name=queue_name, actor_name=OCR_RANGE_ACTOR, args=(job_id, range_id), kwargs={}, options={}
        )
        try:
            broker.enqueue(message, delay=delay_ms)
        except Exception:
            logger.exception("could not offer OCR range %s of job %s; its own worker reads it", range_id, job_id)
