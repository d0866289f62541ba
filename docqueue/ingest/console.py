"""`docqueue ingest` on a terminal: the progress bar, the summary, the rejected-files CSV and `--monitor`.

Rich draws the bar on stderr; what a script needs (the summary and the CSV's
path) goes to stdout as plain lines.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.text import Text
from sqlalchemy import select

from docqueue.accounts.users import normalize_email
from docqueue.db import session_scope
from docqueue.ingest.importer import IngestOptions, IngestProgress, IngestReport, ingest_paths
from docqueue.ingest.runs import write_rejections_csv
from docqueue.models import IngestRun, User
from docqueue.queue.lanes import bulk_backlog, bulk_outcomes
from docqueue.settings import docqueue_home

#: How often --monitor looks at the queue.
MONITOR_INTERVAL_SECONDS = 2.0


class FilesColumn(ProgressColumn):
    """`1,200/100,000 files 2,310 files/s`: files read so far, from the task's fields, rate over the elapsed time."""

    def render(self, task) -> Text:
        done, total = task.fields.get("files_read", 0), task.fields.get("files_total", 0)
        elapsed = task.elapsed or 0
        rate = done / elapsed if elapsed > 0 else 0
        return Text(f"{done:,}/{total:,} files {rate:,.0f} files/s", style="progress.data.speed")


class StopRequest:
    """Ctrl-C or SIGTERM: the first asks the import to stop after the batch in hand; a second stops at once."""

    def __init__(self) -> None:
        self.requested = False

    def __call__(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def install(self) -> StopRequest:
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, self)
        return self


def _owner_id(email: str) -> int:
    with session_scope() as session:
        owner = session.scalar(select(User.id).where(User.email == normalize_email(email)))
    if owner is None:
        raise click.ClickException(f"no user with email {email} (create one with `docqueue user create`)")
    return owner


def run_ingest(paths: tuple[str, ...], email: str, monitor: bool, rejected_csv: Path | None = None, **overrides) -> int:
    """The whole command: ingest with a progress bar, report, write the CSV, then optionally monitor.

    The rejected files' CSV goes to `rejected_csv`, else under DOCQUEUE_HOME (never the working folder).
    """
    owner_id = _owner_id(email)
    options = IngestOptions.from_settings(**overrides)
    # A `kill` stops as cleanly as Ctrl-C: between batches, keeping every committed one.
    stop = StopRequest().install()
    console = Console(stderr=True)
    columns = (
        TextColumn("[bold]ingest"),
        BarColumn(),
        FilesColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task("ingest", total=None)

        def show(progress: IngestProgress) -> None:
            bar.update(
                task,
                total=progress.bytes_total,
                completed=progress.bytes_read,
                files_read=progress.files_read,
                files_total=progress.files_total,
            )

        with session_scope() as session:
            report = ingest_paths(
                session, owner_id, paths, options, on_progress=show, should_stop=lambda: stop.requested
            )
    _summarise(report, options.dry_run, rejected_csv)
    if monitor and not options.dry_run and report.status == "completed":
        with session_scope() as session:
            started_at = session.get(IngestRun, report.run_id).started_at
        follow_backlog(owner_id, started_at, console, lambda: stop.requested)
    return 1 if report.status == "interrupted" else 0


def _summarise(report: IngestReport, dry_run: bool, rejected_csv: Path | None) -> None:
    p = report.progress
    verb = "would add" if dry_run else "added"
    run = f"run {report.run_id}" if report.run_id else "dry run"
    click.echo(
        f"{run} {report.status}: {verb} {p.added:,} documents ({p.bytes_added:,} bytes); "
        f"{p.duplicates:,} already there, {p.rejected:,} rejected, {p.filtered:,} filtered out; "
        f"{p.files_done:,} of {p.files_total:,} files done"
    )
    if report.status == "interrupted":
        click.echo("interrupted: every batch counted above is committed; run the same command again to add the rest")
    if report.rejections:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        path = rejected_csv or docqueue_home() / "ingest" / f"ingest-{report.run_id or 'dry-run'}-{stamp}-rejected.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", newline="", encoding="utf-8") as target:
            write_rejections_csv(((r.display, r.reason) for r in report.rejections), target)
        click.echo(f"rejected files: {path}")


def follow_backlog(owner_id: int, since: datetime, console: Console, should_stop: Callable[[], bool]) -> None:
    """Show the owner's bulk backlog draining, with its ETA, until it is empty or `should_stop()` (Ctrl-C).

    Drained, it says how many of the owner's imported documents finished since `since` completed and failed.
    """
    with session_scope() as session:
        remaining = start_remaining = bulk_backlog(session, owner_id)
    started = time.monotonic()
    columns = (
        TextColumn("[bold]processing"),
        BarColumn(),
        TextColumn("{task.completed:,.0f}/{task.total:,.0f} documents"),
        TextColumn("{task.fields[rate]}"),
        TextColumn("ETA {task.fields[eta]}"),
    )
    try:
        with Progress(*columns, console=console) as bar:
            task = bar.add_task("processing", total=start_remaining, rate="", eta="?")
            while remaining and not should_stop():
                time.sleep(MONITOR_INTERVAL_SECONDS)
                with session_scope() as session:
                    remaining = bulk_backlog(session, owner_id)
                done = start_remaining - remaining
                rate = done / (time.monotonic() - started)
                eta = f"{remaining / rate:,.0f} s" if rate > 0 else "?"
                bar.update(task, completed=done, rate=f"{rate:,.1f} docs/s", eta=eta)
    except KeyboardInterrupt:
        pass
    if remaining:
        click.echo(f"stopped watching: {remaining:,} documents of the import still waiting or running")
    else:
        with session_scope() as session:
            outcomes = bulk_outcomes(session, owner_id, since)
        failed = outcomes.get("failed", 0)
        cancelled = f", {outcomes['cancelled']:,} cancelled" if outcomes.get("cancelled") else ""
        where = " (why: /admin/failures)" if failed else ""
        click.echo(
            f"the import is processed: {outcomes.get('completed', 0):,} documents completed, "
            f"{failed:,} failed{cancelled}{where}"
        )
