"""The actor that sends due result callbacks (see `docqueue/callbacks`)."""

import dramatiq

from docqueue.callbacks.sender import ACTOR_NAME, QUEUE_NAME, deliver_due


@dramatiq.actor(actor_name=ACTOR_NAME, queue_name=QUEUE_NAME, max_retries=0, io_lane=True)
def deliver_callbacks() -> None:
    """POST every due callback; retries are rows in Postgres, so Dramatiq's own retry is off."""
    deliver_due()
