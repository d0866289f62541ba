"""One ingest run from start to end: walk, read and hash, store in batches, record.

The CLI (`docqueue ingest`) and the browser's folder upload both call
`ingest_paths`; only how they show progress differs. Interrupting it (Ctrl-C,
SIGTERM turned into KeyboardInterrupt by the CLI) rolls back the batch in
hand, keeps every committed one and marks the run `interrupted`; running it
again adds only what is missing, because every batch is deduplicated
against what the owner already has.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import nullcontext
from dataclasses import dataclass, field

from psycopg.errors import QueryCanceled
from sqlalchemy.orm import Session

from docqueue.dispatch.dispatcher import nudge_dispatcher
from docqueue.ingest.batch import store_batch
from docqueue.ingest.heartbeat import RunHeartbeat
from docqueue.ingest.reading import ReadFile, read_files
from docqueue.ingest.runs import finish_run, run_rejections, start_run
from docqueue.ingest.walk import Rejection, walk_paths
from docqueue.models import IngestRun
from docqueue.settings import get_settings
from docqueue.statuses import IngestRunStatus, QueueLane


@dataclass(frozen=True)
class IngestOptions:
    batch_size: int
    max_concurrent_io: int
    max_bytes: int
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    priority: int | None = None
    dry_run: bool = False
    #: "cli" or "browser", for the run record.
    source: str = "cli"

    @classmethod
    def from_settings(cls, **overrides) -> IngestOptions:
        """Options with QUEUE_BATCH_SIZE, MAX_CONCURRENT_IO and MAX_UPLOAD_MB as defaults."""
        settings = get_settings()
        defaults = {
            "batch_size": settings.queue_batch_size,
            "max_concurrent_io": settings.max_concurrent_io,
            "max_bytes": settings.max_upload_bytes,
        }
        return cls(**{**defaults, **{name: value for name, value in overrides.items() if value is not None}})


@dataclass
class IngestProgress:
    """Where a run stands; `*_done` counts only what committed batches hold, `*_read` also the batch in hand."""

    files_total: int = 0
    bytes_total: int = 0
    files_read: int = 0
    bytes_read: int = 0
    files_done: int = 0
    added: int = 0
    bytes_added: int = 0
    duplicates: int = 0
    rejected: int = 0
    #: Left out by --include / --exclude.
    filtered: int = 0


@dataclass
class IngestReport:
    run_id: int | None
    status: IngestRunStatus
    progress: IngestProgress
    rejections: list[Rejection] = field(default_factory=list)


def ingest_paths(
    session: Session,
    owner_id: int,
    paths: Iterable[str],
    options: IngestOptions,
    on_progress: Callable[[IngestProgress], None] | None = None,
    display_paths: Iterable[str] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> IngestReport:
    """Import every supported file under `paths` for `owner_id`; commits batch by batch.

    `display_paths` names the paths in the run record and the rejected files
    when they differ from `paths` (a folder upload's temporary directory).
    When `should_stop()` turns true (the CLI's Ctrl-C) the run stops between
    batches as `interrupted`; a KeyboardInterrupt does the same wherever it
    lands, rolling back the batch in hand. The report then says what
    committed. Any other error marks the run `failed` and propagates.
    """
    paths = list(paths)
    display_paths = list(display_paths) if display_paths is not None else None
    walked = walk_paths(
        paths, include=options.include, exclude=options.exclude, max_bytes=options.max_bytes, names=display_paths
    )
    progress = IngestProgress(
        files_total=len(walked.candidates) + len(walked.rejections),
        bytes_total=walked.total_bytes,
        filtered=walked.filtered,
        files_read=len(walked.rejections),
    )
    notify = on_progress or (lambda _: None)
    notify(progress)
    run_id = None
    if not options.dry_run:
        run_id = start_run(session, owner_id, options.source, display_paths or paths)
    report = IngestReport(run_id=run_id, status=IngestRunStatus.COMPLETED, progress=progress)
    files: list[ReadFile] = []
    rejections: list[Rejection] = list(walked.rejections)

    def commit_batch() -> None:
        result = store_batch(
            session,
            owner_id,
            files,
            rejections,
            run_id=run_id,
            priority=options.priority,
            lane=QueueLane.BULK,
            dry_run=options.dry_run,
        )
        progress.files_done += len(files) + len(rejections)
        progress.added += result.added
        progress.bytes_added += result.bytes_added
        progress.duplicates += result.duplicates
        progress.rejected += len(result.rejections)
        report.rejections.extend(result.rejections)
        files.clear()
        rejections.clear()
        if result.added and not progress.added - result.added and not options.dry_run:
            # Start the import now; from then on each finished job admits the next.
            nudge_dispatcher(session)
        notify(progress)

    beating = RunHeartbeat(session.get_bind(), run_id) if run_id is not None else nullcontext()
    try:
        with beating:
            for item in read_files(walked.candidates, options.max_concurrent_io, options.max_bytes):
                if should_stop():
                    report.status = IngestRunStatus.INTERRUPTED
                    break
                if isinstance(item, Rejection):
                    rejections.append(item)
                    progress.bytes_read += item.size
                else:
                    files.append(item)
                    progress.bytes_read += item.candidate.size
                progress.files_read += 1
                if len(files) >= options.batch_size:
                    commit_batch()
                else:
                    notify(progress)  # a batch takes a while to read: show it moving, not only at commits
            if (files or rejections) and report.status is IngestRunStatus.COMPLETED:
                commit_batch()
    except BaseException as error:
        if not _is_interrupt(error):
            session.rollback()
            if run_id is not None:
                finish_run(session, run_id, IngestRunStatus.FAILED)
            raise
        report.status = IngestRunStatus.INTERRUPTED
        # Interrupted mid-statement, the connection's protocol state is unknown: never reuse it.
        session.invalidate()
    session.rollback()
    if run_id is not None:
        _report_what_committed(report, finish_run(session, run_id, report.status), session)
    return report


def _is_interrupt(error: BaseException) -> bool:
    """Ctrl-C, or the statement psycopg cancelled on the server because of it."""
    return isinstance(error, KeyboardInterrupt) or isinstance(getattr(error, "orig", None), QueryCanceled)


def _report_what_committed(report: IngestReport, run: IngestRun, session: Session) -> None:
    """Take the counts and rejections from the run record: an interrupt can land after a commit
    but before the counters in memory moved, and the record moved with the commit."""
    progress = report.progress
    progress.files_done, progress.added, progress.bytes_added = run.files_seen, run.files_added, run.bytes_added
    progress.duplicates, progress.rejected = run.duplicates, run.rejected
    report.rejections = [Rejection(row.path, row.reason) for row in run_rejections(session, run.id)]
