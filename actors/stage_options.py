"""Options every stage actor shares."""

from docqueue.pipeline import STAGE_QUEUE

STAGE_ACTOR_OPTIONS = {
    "queue_name": STAGE_QUEUE,
    # Retries live in Postgres (attempts, run_after): Dramatiq's Redis retry can be lost.
    "max_retries": 0,
    # The PDF pool enforces each user's stage time limit by killing the process;
    # this is only a backstop for a thread that somehow never returns.
    "time_limit": 6 * 60 * 60 * 1000,
    "heartbeat_lease": True,
}
