"""One Dramatiq actor per pipeline stage, made from the stage list.

Each actor only names its stage and hands its message's job id (or ids: a
message may carry several of one owner's jobs) to `run_stage`, so a
new stage in `docqueue/pipeline.py` gets its actor without a line here.
"""

import dramatiq

from docqueue.pipeline import PIPELINE
from docqueue.stages.stage import Lane, Stage
from docqueue.worker.stage_runner import run_stage

STAGE_ACTOR_OPTIONS = {
    # Retries live in Postgres (attempts, run_after): Dramatiq's Redis retry can be lost.
    "max_retries": 0,
    # Each stage has its own time limit (the PDF pool kills the process; a stage in the
    # worker stops at its next batch past it): this is only a backstop for a thread that never returns.
    "time_limit": 6 * 60 * 60 * 1000,
    "heartbeat_lease": True,
}


def _declare(stage: Stage) -> dramatiq.Actor:
    def run(job_ids: int | list[int]) -> None:
        run_stage(stage.name, job_ids)

    run.__name__ = run.__qualname__ = stage.actor_name
    run.__doc__ = f"Stage `{stage.name}`: {stage.description}."
    return dramatiq.actor(
        run,
        actor_name=stage.actor_name,
        queue_name=stage.queue_name,
        io_lane=stage.lane is Lane.IO,
        **STAGE_ACTOR_OPTIONS,
    )


#: Stage name -> its actor.
STAGE_ACTORS = {stage.name: _declare(stage) for stage in PIPELINE}
