"""What a document's owner sees of its last run, and what they may do about it.

The stage records say what happened; this module says it for the reader:
which stages will never run (those after the stage that failed a run),
which failed stages and skipped pages the run completed without
(`warnings`), and which
actions apply (reprocess, retry from the failed stage, retry one stage).
The document page and the API both read it, so they never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from docqueue.pipeline import stage_named
from docqueue.queue.stage_record_reads import StageRecordView
from docqueue.statuses import DocumentStatus

#: What a stage record shows when its run failed before reaching it: it will never run in that run.
NOT_RUN = "not_run"
#: Document statuses in which a run is live: no action may start another.
LIVE_STATUSES = (DocumentStatus.PENDING, DocumentStatus.PROCESSING)


@dataclass(frozen=True)
class DocumentState:
    """The last run's stages as shown, the failures the document completed with, and what may be done."""

    stages: list[StageRecordView]
    #: Optional stages the completed run went on without, each failed with its reason: retryable alone.
    optional_failures: list[StageRecordView]
    #: The stage that failed the run, when it failed.
    failed_stage: str | None
    #: Whether a new run may start now (no run is live).
    can_reprocess: bool
    #: (page number, why) of pages skipped because their contents could not be read.
    skipped_pages: list[tuple[int, str]] = field(default_factory=list)

    @property
    def can_retry_failed(self) -> bool:
        """Whether the failed run can be retried from the stage that failed."""
        return self.failed_stage is not None

    @property
    def warnings(self) -> list[dict]:
        """What the document completed without, as the API lists them: `{"stage", "error"}` for each failed
        optional stage, `{"stage": "extract_text", "page", "error"}` for each page whose contents were skipped."""
        stages = [{"stage": record.stage, "error": record.error} for record in self.optional_failures]
        pages = [{"stage": "extract_text", "page": number, "error": note} for number, note in self.skipped_pages]
        return stages + pages


def document_state(
    status: str, records: list[StageRecordView], skipped_pages: list[tuple[int, str]] | None = None
) -> DocumentState:
    """Read the newest run's `records` for a document whose status is `status`, and the (page, note) of the
    pages whose contents were skipped (`documents.page_notes`)."""
    failed_stage = None
    if status == DocumentStatus.FAILED:
        failed_stage = next((record.stage for record in records if record.status == "failed"), None)
    stages = []
    for record in records:
        if failed_stage is not None and record.status == "pending":
            record = replace(record, status=NOT_RUN, error=f"not run: the document failed at {failed_stage}")
        stages.append(record)
    optional_failures = []
    if status == DocumentStatus.COMPLETED:
        optional_failures = [record for record in records if record.status == "failed" and _is_optional(record.stage)]
    return DocumentState(
        stages=stages,
        optional_failures=optional_failures,
        failed_stage=failed_stage,
        can_reprocess=status not in LIVE_STATUSES,
        skipped_pages=skipped_pages or [],
    )


def _is_optional(name: str) -> bool:
    try:
        return stage_named(name).optional
    except KeyError:  # a stage of an older release, no longer in the pipeline
        return False
