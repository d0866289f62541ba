"""Offering an OCR job's page ranges to any worker with a free PDF process, a few offers at a time.

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


def offer_ocr_ranges(job_id: int, count: int, delay_ms: int | None = None) -> None:
    """Offer `count` of the job's OCR ranges to any worker (after `delay_ms`); call after they are committed.

    An offer names no range: whoever receives it takes the next one still
    to read, and offers one more once it has read it (`read_offered_range`).
    So a job's offers in Redis stay as few as the ranges that can run at
    once, however many ranges it has. A lost offer costs only speed: the
    OCR stage's own worker reads every range nobody took.
    """
    import dramatiq

    broker = dramatiq.get_broker()
    queue_name = LANE_QUEUES[Lane.CPU]
    for _ in range(count):
        message = dramatiq.Message(
            queue_name=queue_name, actor_name=OCR_RANGE_ACTOR, args=(job_id, None), kwargs={}, options={}
        )
        try:
            broker.enqueue(message, delay=delay_ms)
        except Exception:
            logger.exception("could not offer an OCR range of job %s; its own worker reads it", job_id)
