"""Sending stage messages, and reading which ones Redis holds.

Messages are built by actor name so this package never imports `actors`.
Call only after the transaction that made the job `queued` has committed.
"""

from __future__ import annotations

import logging

import dramatiq

from docqueue.jobs import Dispatch
from docqueue.pipeline import PIPELINE, stage_named

logger = logging.getLogger(__name__)


def send_stage_messages(dispatches: list[Dispatch]) -> int:
    """Enqueue one message per dispatch; return how many were sent.

    A send that fails is logged and left: the job stays `queued` and the
    dispatcher re-sends it after REDISPATCH_AFTER_SECONDS.
    """
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


def held_messages() -> set[tuple[int, str]]:
    """(job id, stage) of every stage message Redis holds now, waiting or being worked on.

    Dramatiq's Redis broker keeps each message in its queue's `.msgs` hash
    until a worker acknowledges it. The hashes hold about as many messages
    as jobs are in flight (OCR_CONCURRENT_JOBS), so reading them is cheap.
    """
    broker = dramatiq.get_broker()
    stages_by_actor = {stage.actor_name: stage.name for stage in PIPELINE}
    held = set()
    for queue_name in {stage.queue_name for stage in PIPELINE}:
        for data in broker.client.hvals(f"{broker.namespace}:{queue_name}.msgs"):
            message = dramatiq.Message.decode(data)
            if message.actor_name in stages_by_actor and message.args:
                held.add((message.args[0], stages_by_actor[message.actor_name]))
    return held
