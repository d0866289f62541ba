"""The actor that reads one range of a scan's OCR for whichever job offered it (see `docqueue/ocr/range_reading.py`)."""

import dramatiq

from actors.stages import STAGE_ACTOR_OPTIONS
from docqueue.ocr.range_messages import OCR_RANGE_ACTOR
from docqueue.ocr.range_reading import read_offered_range
from docqueue.pipeline import progress_span
from docqueue.stages import ocr
from docqueue.stages.stage import LANE_QUEUES, Lane


@dramatiq.actor(
    actor_name=OCR_RANGE_ACTOR,
    queue_name=LANE_QUEUES[Lane.CPU],
    # Not `heartbeat_lease`: the job's lease is the OCR stage worker's to renew, not this one's.
    **{**STAGE_ACTOR_OPTIONS, "heartbeat_lease": False},
)
def ocr_range(job_id: int, range_id: int | None = None) -> None:
    """Read OCR range `range_id` of job `job_id` (None: the next one) if it is still to be read."""
    read_offered_range(job_id, range_id, progress_span(ocr.STAGE.name))
