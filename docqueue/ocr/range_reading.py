"""Reading a scan's OCR ranges: by the OCR stage's own worker, and by any other worker that takes one.

The stage's worker (the coordinator, `stages/ocr.py`) splits the pages
into ranges, offers a few to the other workers by message, and reads ranges
itself as many at a time as its PDF pool has processes free, until none is
left to take; then it waits for the ranges others are reading. A worker with
a free PDF process takes an offered range (`read_offered_range`), reads it
in its own PDF pool and offers the next one on: the offers in Redis stay as
few as the ranges that can run at once. So a 300-page scan spreads over
every idle worker process instead of one machine's pool. The rules of
taking and fencing are in `docqueue/queue/ocr_ranges.py`.

A document's OCR is bounded by its pages (`ocr_budget`); every reader stops
within seconds once the stage's claim is gone (a cancel); and a range gives
way to another user's waiting work like any task in the pool
(`docqueue/runtime/pool_share.py`).
"""

from __future__ import annotations

import logging
import math
import tempfile
import time
from dataclasses import replace

from docqueue.db import session_scope
from docqueue.documents import detected_type
from docqueue.errors import StageError, StageTimeout
from docqueue.jobs import Claim, LeaseLost
from docqueue.ocr.pages import read_page_range
from docqueue.ocr.range_messages import offer_ocr_ranges
from docqueue.queue import DocumentQueueService, ocr_ranges
from docqueue.queue.ocr_ranges import TakenRange
from docqueue.results.pages import pages_awaiting_ocr
from docqueue.runtime import lease_watch
from docqueue.runtime.pdf_pool import (
    StageStopped,
    free_processes,
    has_free_process,
    run_in_pdf_processes,
)
from docqueue.runtime.pool_share import Preempted
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


def ocr_budget(pages: int) -> float:
    """Seconds the OCR stage of a document may take to read `pages` pages: OCR_SECONDS_PER_PAGE each.

    However many ranges and workers read them, and however long each page
    may take on its own, a document's OCR is bounded by its pages.
    """
    return pages * get_settings().ocr_seconds_per_page


def _unread(awaiting: list[int], taken: list[TakenRange]) -> list[list[int]]:
    """Each taken range's pages among those `awaiting` OCR: an abandoned range was partly read."""
    still = set(awaiting)
    return [[page for page in each.pages if page in still] for each in taken]


def _end_ranges(ranges: list[TakenRange], end, *args) -> None:
    with session_scope() as session:
        for taken in ranges:
            end(session, taken, current_worker_id(), *args)


def _claim_gone(claim: Claim) -> bool:
    """Whether the OCR stage's claim no longer holds (cancelled, taken back, finished)."""
    try:
        with session_scope() as session:
            DocumentQueueService(session).hold_lease(claim)
    except LeaseLost:
        return True
    return False


def _read(claim: Claim, path: str, kind: str, total: int, taken: list[TakenRange], timeout: float, stop) -> None:
    """Read the taken ranges' unread pages in this worker's pool at once, then mark them done.

    A range this worker's pool gave to another user's waiting work
    (Preempted) goes back to `pending`, all of them with it, to be taken
    again; an error fails them all, and is raised.
    """
    with session_scope() as session:
        unread = _unread(pages_awaiting_ocr(session, claim.job_id)[0], taken)
    arguments = [(path, kind, claim, pages, total) for pages in unread if pages]
    try:
        if arguments:
            run_in_pdf_processes(
                read_page_range,
                arguments,
                timeout=timeout,
                stop=stop,
                confirm_stop=lambda: _claim_gone(claim),
                owner=claim.owner_id,
            )
    except (LeaseLost, StageStopped):
        raise
    except WorkerStopping:
        # Preempted, or the worker is shutting down: the ranges wait for someone else.
        _end_ranges(taken, ocr_ranges.give_back)
        raise
    except Exception as error:
        _end_ranges(taken, ocr_ranges.fail, failure_reason(error))
        raise
    _end_ranges(taken, ocr_ranges.finish)


def read_ranges(claim: Claim, path: str, detected_type: str, total: int, budget: float) -> None:
    """The coordinator's part: read what nobody else took, then wait for the rest; StageError if a range failed.

    It takes as many ranges at once as its pool has processes free (one at
    least), and stops when the claim is lost (the stage's lease watch) or
    after `budget` seconds (StageTimeout). Ranges nobody took are then
    dropped, so none waits for a reader that will never come.
    """
    deadline = time.monotonic() + budget
    stop = lease_watch.lost_event(claim.job_id)
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise StageTimeout.after(round(budget))
            with session_scope() as session:
                mine = ocr_ranges.take(session, claim.job_id, current_worker_id(), limit=max(1, free_processes()))
            if mine:
                timeout = min(range_timeout(max(len(each.pages) for each in mine), claim), left + 1)
                try:
                    _read(claim, path, detected_type, total, mine, timeout, stop)
                except Preempted:
                    continue  # given back: taken again once this user's share of the pool allows
                except StageTimeout:
                    if time.monotonic() >= deadline:
                        raise StageTimeout.after(round(budget)) from None
                    raise
                continue
            with session_scope() as session:
                where = ocr_ranges.state(session, claim)
            if where.failed_error:
                raise StageError(where.failed_error)
            if where.finished:
                return
            if is_stopping():
                raise WorkerStopping("the worker is shutting down")
            if stop is not None and stop.is_set() and _claim_gone(claim):
                raise StageStopped("stopped: the job's lease was lost (cancelled or taken over)")
            time.sleep(WAIT_POLL_SECONDS)
    except BaseException:
        with session_scope() as session:
            ocr_ranges.drop_pending(session, claim)
        raise


def read_offered_range(job_id: int, range_id: int | None, progress: tuple[int, int]) -> str:
    """Another worker's part: take an offered range (`range_id`, or the next) if one is still to read, read it in
    this worker's pool, and offer the job's next range on.

    `progress` is the OCR stage's span of the document's progress (`Claim.progress`).

    Returns what happened: "offered_again" (this worker's PDF processes are
    all busy), "dropped" (nothing left to take, or its claim is gone),
    "done", "failed", "handed_back" or "lease_lost". The reader follows the
    job's claim: a cancel stops it within seconds (`lease_watch.following`).
    """
    if not has_free_process():
        # Read here, the range would wait for this worker's own PDF processes: offer it to the others again.
        offer_ocr_ranges(job_id, 1, delay_ms=REOFFER_DELAY_MS)
        return "offered_again"
    with session_scope() as session:
        taken = ocr_ranges.take(session, job_id, current_worker_id(), range_id=range_id)
        if not taken:
            return "dropped"
        claim = replace(taken[0].claim, progress=progress)
        kind = detected_type(session, claim.document_id)
        total = pages_awaiting_ocr(session, job_id)[1]
    try:
        with (
            tempfile.TemporaryDirectory(prefix=f"docqueue-{job_id}-ocr-") as directory,
            lease_watch.following(job_id, claim.lease_token) as lost,
        ):
            path = OriginalFile(claim.document_id, directory).fetch()
            _read(claim, path, kind, total, taken, range_timeout(len(taken[0].pages), claim), lost)
    except WorkerStopping:
        # Given back (`_read`): another worker, or this one once its pool allows, takes it.
        offer_ocr_ranges(job_id, 1, delay_ms=REOFFER_DELAY_MS)
        return "handed_back"
    except (LeaseLost, StageStopped):
        logger.info(
            "OCR range %s of job %s (document %s): the job's OCR claim is gone; its pages were not kept",
            taken[0].id,
            job_id,
            claim.document_id,
        )
        return "lease_lost"
    except Exception:
        logger.warning(
            "OCR range %s of job %s (document %s) failed", taken[0].id, job_id, claim.document_id, exc_info=True
        )
        return "failed"
    offer_ocr_ranges(job_id, 1)
    return "done"
