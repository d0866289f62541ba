"""Reading a scan's OCR ranges: by the OCR stage's own worker, and by any other worker that takes one.

The stage's worker (the coordinator, `stages/ocr.py`) splits the pages
into ranges, offers each to every worker by message, and reads ranges itself
as many at a time as its PDF pool has processes, until none is left to take;
then it waits for the ranges others are reading. A worker with a free
thread takes an offered range (`read_offered_range`) and reads it in its own
PDF pool. So a 300-page scan spreads over every idle worker process instead
of one machine's pool. The rules of taking and fencing are in
`docqueue/queue/ocr_ranges.py`.
"""

from __future__ import annotations

import logging
import math
import tempfile
import time
from dataclasses import replace

from docqueue.db import session_scope
from docqueue.documents import detected_type, pages_awaiting_ocr
from docqueue.errors import StageError
from docqueue.jobs import Claim, LeaseLost
from docqueue.ocr.pages import read_page_range
from docqueue.ocr.range_messages import send_ocr_range_messages
from docqueue.queue import ocr_ranges
from docqueue.queue.ocr_ranges import TakenRange
from docqueue.runtime.pdf_pool import has_free_process, run_in_pdf_process, run_in_pdf_processes
from docqueue.runtime.worker_identity import current_worker_id
from docqueue.runtime.worker_shutdown import WorkerStopping, is_stopping
from docqueue.settings import get_settings
from docqueue.storage.originals import OriginalFile

logger = logging.getLogger(__name__)

#: How often the coordinator looks at the ranges others are reading.
WAIT_POLL_SECONDS = 0.5
#: How soon a range offered to a worker with no free PDF process is offered again (to any worker).
REOFFER_DELAY_MS = 500
#: What the uploader reads when OCR broke on something other than the file (logged in full).
INTERNAL_ERROR = "OCR failed because of an internal error"


def failure_reason(error: Exception) -> str:
    """What the uploader is told of an OCR failure: our own errors as they are, nothing internal."""
    return str(error) if isinstance(error, StageError) else INTERNAL_ERROR


def split_pages(pages: list[int], most: int, processes: int) -> list[list[int]]:
    """`pages` in contiguous ranges of even sizes (differing by one at most), none over `most` pages, as many as
    `processes` or a multiple of it when there are pages enough: every process gets the same share of work.

    A 20-page scan on two processes is read 5 + 5 + 5 + 5, never 8 + 8 + 4 with a process idle at the end.
    """
    if not pages:
        return []
    count = min(len(pages), math.ceil(math.ceil(len(pages) / most) / processes) * processes)
    size, extra = divmod(len(pages), count)
    ranges, start = [], 0
    for index in range(count):
        end = start + size + (1 if index < extra else 0)
        ranges.append(pages[start:end])
        start = end
    return ranges


def range_timeout(pages: int, claim: Claim) -> float:
    """Seconds a range may take: two Tesseract runs a page (orientation, then reading) within the per-page limit."""
    return pages * 2 * claim.timeout_seconds + 60


def _unread(awaiting: list[int], taken: list[TakenRange]) -> list[list[int]]:
    """Each taken range's pages among those `awaiting` OCR: an abandoned range was partly read."""
    still = set(awaiting)
    return [[page for page in each.pages if page in still] for each in taken]


def _end_ranges(ranges: list[TakenRange], end, *args) -> None:
    with session_scope() as session:
        for taken in ranges:
            end(session, taken, current_worker_id(), *args)


def read_ranges(claim: Claim, path: str, detected_type: str, total: int) -> None:
    """The coordinator's part: read what nobody else took, then wait for the rest; StageError if a range failed."""
    processes = get_settings().pdf_worker_processes
    while True:
        with session_scope() as session:
            mine = ocr_ranges.take(session, claim.job_id, current_worker_id(), limit=processes)
            unread = _unread(pages_awaiting_ocr(session, claim.job_id)[0], mine) if mine else []
        if mine:
            timeout = range_timeout(max(len(pages) for pages in unread), claim)
            try:
                run_in_pdf_processes(
                    read_page_range, [(path, detected_type, claim, pages, total) for pages in unread], timeout=timeout
                )
            except LeaseLost:
                raise
            except Exception as error:
                _end_ranges(mine, ocr_ranges.fail, failure_reason(error))
                raise
            _end_ranges(mine, ocr_ranges.finish)
            continue
        with session_scope() as session:
            where = ocr_ranges.state(session, claim)
        if where.failed_error:
            raise StageError(where.failed_error)
        if where.finished:
            return
        if is_stopping():
            raise WorkerStopping("the worker is shutting down")
        time.sleep(WAIT_POLL_SECONDS)


def read_offered_range(job_id: int, range_id: int, progress: tuple[int, int]) -> str:
    """Another worker's part: take the offered range if it is still to read, and read it in this worker's pool.

    `progress` is the OCR stage's span of the document's progress (`Claim.progress`).

    Returns what happened: "offered_again" (this worker's PDF processes are
    all busy), "dropped" (taken, finished, or its claim is gone), "done",
    "failed", "handed_back" or "lease_lost".
    """
    if not has_free_process():
        # Read here, the range would wait for this worker's own PDF processes: offer it to the others again.
        send_ocr_range_messages(job_id, [range_id], delay_ms=REOFFER_DELAY_MS)
        return "offered_again"
    with session_scope() as session:
        taken = ocr_ranges.take(session, job_id, current_worker_id(), range_id=range_id)
        if not taken:
            return "dropped"
        claim = replace(taken[0].claim, progress=progress)
        awaiting, total = pages_awaiting_ocr(session, job_id)
        [pages] = _unread(awaiting, taken)
        kind = detected_type(session, claim.document_id)
    try:
        with tempfile.TemporaryDirectory(prefix=f"docqueue-{job_id}-ocr-") as directory:
            path = OriginalFile(claim.document_id, directory).fetch()
            run_in_pdf_process(
                read_page_range,
                path,
                kind,
                claim,
                pages,
                total,
                timeout=range_timeout(len(pages), claim),
            )
    except WorkerStopping:
        _end_ranges(taken, ocr_ranges.give_back)
        return "handed_back"
    except LeaseLost:
        logger.info(
            "OCR range %s of job %s (document %s): the job's OCR claim is gone; its pages were not kept",
            range_id,
            job_id,
            claim.document_id,
        )
        return "lease_lost"
    except Exception as error:
        logger.warning(
            "OCR range %s of job %s (document %s) failed", range_id, job_id, claim.document_id, exc_info=True
        )
        _end_ranges(taken, ocr_ranges.fail, failure_reason(error))
        return "failed"
    _end_ranges(taken, ocr_ranges.finish)
    return "done"
