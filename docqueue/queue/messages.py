"""Sending stage messages: the only place docqueue talks to the broker.

Messages are built by actor name so this package never imports `actors`.
Call only after the transaction that made the job `queued` has committed.
Dramatiq is imported by the functions that use it: PDF processes import
this module (with every stage) but never send, and Dramatiq (with gevent,
which it looks for) would cost each ~2 MB.
"""

from __future__ import annotations

import logging

from docqueue.queue.values import Dispatch
from docqueue.stages.stage import LANE_QUEUES, Lane

logger = logging.getLogger(__name__)


def send_stage_messages(dispatches: list[Dispatch]) -> int:
    """Enqueue one message per dispatch; return how many were sent.

    A send that fails is logged and left: the job stays `queued` and the
    dispatcher re-sends it after REDISPATCH_AFTER_SECONDS.
    """
    import dramatiq

    from docqueue.pipeline import stage_named  # the stages send messages, so not at module level

    broker = dramatiq.get_broker()
    sent = 0
    for dispatch in dispatches:
        stage = stage_named(dispatch.stage)
        message = dramatiq.Message(
            queue_name=stage.queue_name,
            actor_name=stage.actor_name,
            args=(dispatch.job_id,),
            kwargs={},
            options={},
        )
        try:
            broker.enqueue(message)
            sent += 1
        except Exception:
            logger.exception(
                "could not send job %s stage %s; the dispatcher will retry", dispatch.job_id, dispatch.stage
            )
    return sent


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


def held_messages() -> set[tuple[int, str]]:
    """(job id, stage) of every stage message Redis holds now, waiting or being worked on.

    Dramatiq's Redis broker keeps each message in its queue's `.msgs` hash
    until a worker acknowledges it. The hashes hold about as many messages
    as jobs are in flight (OCR_CONCURRENT_JOBS), so reading them is cheap.
    """
    import dramatiq

    from docqueue.pipeline import PIPELINE  # the stages send messages, so not at module level

    broker = dramatiq.get_broker()
    stages_by_actor = {stage.actor_name: stage.name for stage in PIPELINE}
    held = set()
    for queue_name in {stage.queue_name for stage in PIPELINE}:
        for data in broker.client.hvals(f"{broker.namespace}:{queue_name}.msgs"):
            message = dramatiq.Message.decode(data)
            if message.actor_name in stages_by_actor and message.args:
                held.add((message.args[0], stages_by_actor[message.actor_name]))
    return held
