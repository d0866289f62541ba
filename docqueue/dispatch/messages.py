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


def in_messages(dispatches: list[Dispatch], per_message: int = 1) -> list[list[Dispatch]]:
    """The dispatches as messages carry them: one owner's jobs at one stage share a message, at most
    `per_message` to a message, in the order given; a dispatch whose owner is unknown travels alone.

    One owner's only: a worker thread runs a message's jobs one after another,
    so a user's slow file delays only that user's other files.
    """
    messages: list[list[Dispatch]] = []
    open_by_key: dict[tuple[str, int], list[Dispatch]] = {}
    for dispatch in dispatches:
        key = (dispatch.stage, dispatch.owner_id)
        batch = open_by_key.get(key) if dispatch.owner_id is not None else None
        if batch is None or len(batch) >= per_message:
            batch = open_by_key[key] = []
            messages.append(batch)
        batch.append(dispatch)
    return messages


def send_stage_messages(dispatches: list[Dispatch]) -> int:
    """Send one message per dispatch; return how many jobs were sent."""
    return send_batches([[dispatch] for dispatch in dispatches])


def send_batches(batches: list[list[Dispatch]]) -> int:
    """Enqueue one message per batch (its jobs share a stage); return how many jobs were sent.

    A message names its job, or its jobs' list when it carries several. A send
    that fails is logged and left: the jobs stay `queued` and the dispatcher
    re-sends them after REDISPATCH_AFTER_SECONDS.
    """
    broker = dramatiq.get_broker()
    sent = 0
    for batch in batches:
        stage = stage_named(batch[0].stage)
        job_ids = [dispatch.job_id for dispatch in batch]
        message = dramatiq.Message(
            queue_name=stage.queue_name,
            actor_name=stage.actor_name,
            args=(job_ids if len(job_ids) > 1 else job_ids[0],),
            kwargs={},
            options={},
        )
        try:
            broker.enqueue(message)
            sent += len(job_ids)
        except Exception:
            logger.exception("could not send jobs %s stage %s; the dispatcher will retry", job_ids, stage.name)
    return sent


def message_job_ids(named: int | list[int]) -> list[int]:
    """The job ids a stage message names: one, or a list."""
    return list(named) if isinstance(named, list) else [named]


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
                stage = stages_by_actor[message.actor_name]
                held.update((job_id, stage) for job_id in message_job_ids(message.args[0]))
    return held
