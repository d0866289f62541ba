"""The `docqueue` command: run the whole system, manage users, run the clock."""

from __future__ import annotations

import sys

import click

from docqueue.db import session_scope
from docqueue.observability import configure_logging
from docqueue.settings import SettingsError
from docqueue.users import UserExists, create_user


class _Commands(click.Group):
    """Report a missing or malformed setting as one line, not a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except SettingsError as error:
            raise click.ClickException(str(error)) from None


@click.group(cls=_Commands)
def main() -> None:
    """docqueue: durable document processing."""
    configure_logging()


@main.group()
def user() -> None:
    """Manage users."""


@user.command("create")
@click.argument("email")
@click.option("--admin", is_flag=True, help="Let the user see and steer the whole queue.")
@click.option("--password", help="Password for the browser login (omit for an API-only user).")
def user_create(email: str, admin: bool, password: str | None) -> None:
    """Create a user and print its API token alone on the last line."""
    try:
        with session_scope() as session:
            created, token = create_user(session, email, password, is_admin=admin)
            click.echo(f"created {'admin' if admin else 'user'} {created.email} (id {created.id}); API token:")
    except (UserExists, ValueError) as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(1)
    click.echo(token)


@main.command()
@click.option("--port", default=8000, show_default=True, help="Port the web process listens on.")
def up(port: int) -> None:
    """Run everything on this machine: Postgres, Redis, migrations, web, worker and clock.

    Without DATABASE_URL and REDIS_URL it starts embedded servers keeping their
    data in ./.docqueue (or DOCQUEUE_HOME). Ctrl-C stops it all.
    """
    from docqueue.up import run_up

    sys.exit(run_up(port))


@main.command()
def clock() -> None:
    """Run periodic maintenance (the Procfile's `clock` process)."""
    from docqueue.clock import run_clock

    run_clock()


@main.command()
def dispatch() -> None:
    """Run the dispatcher once and print what it did."""
    from docqueue.broker import build_broker
    from docqueue.queue.dispatcher import process_document_queue

    build_broker()
    with session_scope() as session:
        click.echo(process_document_queue(session).as_dict())


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, file_okay=True, dir_okay=True))
@click.option("--user", "email", required=True, help="Email of the user who will own the documents.")
@click.option("--batch-size", type=click.IntRange(min=1), help="Files per transaction (default QUEUE_BATCH_SIZE).")
@click.option("--monitor", is_flag=True, help="Then follow the queue until the import is processed.")
@click.option("--dry-run", is_flag=True, help="Walk, sniff, hash and dedupe, but store nothing.")
@click.option("--priority", type=click.IntRange(0, 100), help="Priority for every file (default: by size).")
@click.option("--include", multiple=True, help="Only files matching this glob (name or path below PATH); repeatable.")
@click.option("--exclude", multiple=True, help="Skip files matching this glob; repeatable.")
def ingest(paths, email, batch_size, monitor, dry_run, priority, include, exclude) -> None:
    """Import every PDF, PNG, JPEG and TIFF under PATHS for a user, in batches, skipping what they already have.

    Interrupted (Ctrl-C, kill), it keeps what it committed: run it again to add the rest.
    Rejected files are listed in a CSV written to the current directory.
    """
    from docqueue.broker import build_broker
    from docqueue.ingest.console import run_ingest

    build_broker()
    sys.exit(
        run_ingest(
            paths, email, monitor, batch_size=batch_size, dry_run=dry_run, priority=priority,
            include=tuple(include), exclude=tuple(exclude),
        )
    )
