"""How long one attempt at a stage may run: its base limit, scaled with the document's size.

The base is the stage's fixed `time_limit_seconds`, else the setting it
names (`time_limit_setting`: DISCOVERY_, CHUNKING_, IMAGE_ or
EMBEDDING_TIME_LIMIT_SECONDS), else the owner's `ocr_timeout_seconds`
(searchable_pdf). It grows by one base per TIME_LIMIT_PAGES_PER_STEP pages
(once the page count is known) or TIME_LIMIT_MB_PER_STEP megabytes,
whichever is more, up to TIME_LIMIT_MAX_FACTOR bases: a 2,000-page book may
take longer than a memo, but never without bound.

A stage in a PDF process is killed at its limit (`pdf_pool`); one in the
worker process (chunk, and the I/O lane's embed and enrich) stops at its
next batch past it (`lease_watch`). OCR keeps its own limit
(`Stage.limits_own_time`): OCR_SECONDS_PER_PAGE for each page it reads
(`ocr.range_reading.ocr_budget`), and the owner's `ocr_timeout_seconds` for
each page's recognition.
"""

from __future__ import annotations

from docqueue.jobs import Claim
from docqueue.settings import get_settings
from docqueue.stages.stage import Stage


def base_time_limit(stage: Stage, claim: Claim) -> int:
    """The stage's limit for the smallest document."""
    if stage.time_limit_seconds:
        return stage.time_limit_seconds
    if stage.time_limit_setting:
        return getattr(get_settings(), stage.time_limit_setting)
    return claim.timeout_seconds


def size_factor(size_bytes: int, page_count: int | None) -> int:
    """How many bases a document of this size gets (1 up to TIME_LIMIT_MAX_FACTOR)."""
    settings = get_settings()
    by_pages = 1 + (page_count or 0) // settings.time_limit_pages_per_step
    by_bytes = 1 + size_bytes // (settings.time_limit_mb_per_step * 1024 * 1024)
    return min(max(by_pages, by_bytes), settings.time_limit_max_factor)


def time_limit_for(stage: Stage, claim: Claim) -> int:
    """Seconds this attempt may run, for this stage and this document (its size comes with the claim)."""
    return base_time_limit(stage, claim) * size_factor(claim.size_bytes, claim.page_count)
