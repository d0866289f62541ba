"""`docqueue clock`, `dispatch` and `ingest`: the clock process, one dispatcher run, a bulk import."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from docqueue.connections import ProcessRole, set_process_role
from docqueue.db import session_scope


@click.command()
def clock() -> None:
    """Run periodic maintenance (the Procfile's `clock` process)."""
    from docqueue.clock import run_clock

    set_process_role(ProcessRole.CLOCK)
    run_clock()


@click.command()
def dispatch() -> None:
    """Run the dispatcher once and print what it did."""
    from docqueue.broker import build_broker
    from docqueue.dispatch.dispatcher import process_document_queue

    build_broker()
    with session_scope() as session:
        click.echo(process_document_queue(session).as_dict())


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, file_okay=True, dir_okay=True))
@click.option("--user", "email", required=True, help="Email of the user who will own the documents.")
@click.option("--batch-size", type=click.IntRange(min=1), help="Files per transaction (default QUEUE_BATCH_SIZE).")
@click.option("--monitor", is_flag=True, help="Then follow the queue until the import is processed.")
@click.option("--dry-run", is_flag=True, help="Walk, sniff, hash and dedupe, but store nothing.")
@click.option("--priority", type=click.IntRange(0, 100), help="Priority for every file (default: by size).")
@click.option("--include", multiple=True, help="Only files matching this glob (name or path below PATH); repeatable.")
@click.option("--exclude", multiple=True, help="Skip files matching this glob; repeatable.")
@click.option(
    "--rejected-csv",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write the rejected files' CSV here (default: under DOCQUEUE_HOME, ./.docqueue/ingest/).",
)
def ingest(paths, email, batch_size, monitor, dry_run, priority, include, exclude, rejected_csv) -> None:
    """Import every PDF, PNG, JPEG and TIFF under PATHS for a user, in batches, skipping what they already have.

    Interrupted (Ctrl-C, kill), it keeps what it committed: run it again to add the rest.
    Rejected files are listed in a CSV under DOCQUEUE_HOME, or where --rejected-csv says.
    """
    from docqueue.broker import build_broker
    from docqueue.ingest.console import run_ingest

    set_process_role(ProcessRole.INGEST)
    build_broker()
    sys.exit(
        run_ingest(
            paths,
            email,
            monitor,
            rejected_csv,
            batch_size=batch_size,
            dry_run=dry_run,
            priority=priority,
            include=tuple(include),
            exclude=tuple(exclude),
        )
    )
