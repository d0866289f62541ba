import dramatiq

from actors.stage_options import STAGE_ACTOR_OPTIONS
from docqueue.stage_runner import run_stage


@dramatiq.actor(**STAGE_ACTOR_OPTIONS)
def inspect_document(job_id: int) -> None:
    """Stage `inspect`: sniff the file's type from its bytes, open it and count its pages."""
    run_stage("inspect", job_id)
