"""The `docqueue` command: run the whole system, manage users, run the clock."""

from __future__ import annotations

import sys

import click

from docqueue.db import session_scope
from docqueue.models import ROLES
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
@click.option(
    "--role",
    type=click.Choice(ROLES),
    default="viewer",
    show_default=True,
    help="viewer: own documents; operator: steer the whole queue; admin: also manage users.",
)
@click.option("--admin", is_flag=True, help="Same as --role admin.")
@click.option("--password", help="Password for the browser login (omit for an API-only user).")
def user_create(email: str, role: str, admin: bool, password: str | None) -> None:
    """Create a user and print its API token alone on the last line."""
    role = "admin" if admin else role
    try:
        with session_scope() as session:
            created, token = create_user(session, email, password, role=role)
            click.echo(f"created {role} {created.email} (id {created.id}); API token:")
    except (UserExists, ValueError) as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(1)
    click.echo(token)


def _change_user(email: str, change) -> None:
    """Run `change(session, user)` on the user with `email` in one transaction, audited as the command line."""
    from docqueue.accounts import UnknownUser, find_user

    try:
        with session_scope() as session:
            click.echo(change(session, find_user(session, email)))
    except (UnknownUser, ValueError) as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(1)


@user.command("role")
@click.argument("email")
@click.argument("role", type=click.Choice(ROLES))
def user_role(email: str, role: str) -> None:
    """Give a user a role."""
    from docqueue.accounts import set_role

    def change(session, found):
        set_role(session, None, found, role)
        return f"{found.email} is now {role}"

    _change_user(email, change)


@user.command("disable")
@click.argument("email")
def user_disable(email: str) -> None:
    """Disable a user: no login, and their sessions and API token stop working."""
    from docqueue.accounts import set_disabled

    def change(session, found):
        set_disabled(session, None, found, True)
        return f"{found.email} is disabled"

    _change_user(email, change)


@user.command("enable")
@click.argument("email")
def user_enable(email: str) -> None:
    """Enable a disabled user again."""
    from docqueue.accounts import set_disabled

    def change(session, found):
        set_disabled(session, None, found, False)
        return f"{found.email} is enabled"

    _change_user(email, change)


@user.command("settings")
@click.argument("email")
@click.option("--concurrent-ocr-jobs", type=int, help="Jobs of this user in flight at once (0 holds them all).")
@click.option("--ocr-timeout-seconds", type=int, help="Time limit of each of this user's stages.")
@click.option("--background-ocr/--no-background-ocr", default=None, help="Run OCR for this user's scans.")
def user_settings(
    email: str, concurrent_ocr_jobs: int | None, ocr_timeout_seconds: int | None, background_ocr: bool | None
) -> None:
    """Show a user's settings, changing those given first."""
    from docqueue.accounts import UserSettings, update_settings

    def change(session, found):
        wanted = UserSettings(concurrent_ocr_jobs, ocr_timeout_seconds, background_ocr)
        if wanted != UserSettings():
            update_settings(session, None, found, wanted)
        return (
            f"{found.email}: role={found.role} concurrent_ocr_jobs={found.concurrent_ocr_jobs} "
            f"ocr_timeout_seconds={found.ocr_timeout_seconds} enable_background_ocr={found.enable_background_ocr} "
            f"disabled={'yes' if found.disabled_at else 'no'}"
        )

    _change_user(email, change)


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
