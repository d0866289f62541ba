import dramatiq

from actors.stage_options import STAGE_ACTOR_OPTIONS
from docqueue.stage_runner import run_stage


@dramatiq.actor(**STAGE_ACTOR_OPTIONS)
def extract_text(job_id: int) -> None:
    """Stage `extract_text`: store every page's text layer, page by page."""
    run_stage("extract_text", job_id)
