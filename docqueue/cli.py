"""The `docqueue` command: run the whole system, manage users, run the clock."""

from __future__ import annotations

import sys

import click

from docqueue.db import session_scope
from docqueue.observability import configure_logging
from docqueue.settings import SettingsError
from docqueue.users import UserExists, UserNotFound, create_user, list_users, rotate_token, set_password

#: Commands that manage `docqueue up` itself rather than use the servers it started.
UP_COMMANDS = ("up", "down", "status")


class _Commands(click.Group):
    """Report a missing or malformed setting as one line, not a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except SettingsError as error:
            raise click.ClickException(str(error)) from None


@click.group(cls=_Commands)
@click.pass_context
def main(ctx: click.Context) -> None:
    """docqueue: durable document processing."""
    configure_logging()
    if ctx.invoked_subcommand not in UP_COMMANDS:
        from docqueue.settings import get_settings
        from docqueue.up_control import use_embedded_servers
        from docqueue.up_state import docqueue_home

        if chosen := use_embedded_servers(docqueue_home()):
            click.echo(chosen, err=True)
            get_settings.cache_clear()


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


@user.command("set-password")
@click.argument("email")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True, help="The new password.")
def user_set_password(email: str, password: str) -> None:
    """Set a user's browser password (prompted for when not given)."""
    try:
        with session_scope() as session:
            changed = set_password(session, email, password)
            click.echo(f"set a new password for {changed.email}")
    except (UserNotFound, ValueError) as error:
        raise click.ClickException(str(error)) from None


@user.command("token")
@click.argument("email")
def user_token(email: str) -> None:
    """Give a user a new API token, printed alone on the last line; the old one stops working."""
    try:
        with session_scope() as session:
            changed, token = rotate_token(session, email)
    except UserNotFound as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"new API token for {changed.email} (the old one no longer works):")
    click.echo(token)


@user.command("list")
def user_list() -> None:
    """List every user: id, email, role, when created."""
    with session_scope() as session:
        users = list_users(session)
    if not users:
        click.echo("no users yet (`docqueue up` creates admin@localhost on its first run)")
    for listed in users:
        role = "admin" if listed.is_admin else "user"
        click.echo(f"{listed.id:>6}  {listed.email:<40} {role:<6} created {listed.created_at:%Y-%m-%d %H:%M:%S %Z}")


@main.command()
@click.option("--port", default=8000, show_default=True, help="Port the web process listens on.")
def up(port: int) -> None:
    """Run everything on this machine: Postgres, Redis, migrations, web, worker and clock.

    Without DATABASE_URL and REDIS_URL it starts embedded servers keeping their
    data in ./.docqueue (or DOCQUEUE_HOME). Ctrl-C or `docqueue down` stops it all.
    """
    from docqueue.up import run_up

    sys.exit(run_up(port))


@main.command()
def down() -> None:
    """Stop the `docqueue up` running in this folder (as Ctrl-C in its terminal would), or what a killed one left."""
    from docqueue.up_control import bring_down
    from docqueue.up_state import docqueue_home

    if not bring_down(docqueue_home(), click.echo):
        sys.exit(1)


@main.command()
def status() -> None:
    """Show what `docqueue up` runs in this folder: pids, URLs, whether the web answers. Exit 0 when healthy."""
    from docqueue.up_control import status_lines
    from docqueue.up_state import docqueue_home

    healthy, lines = status_lines(docqueue_home())
    click.echo("\n".join(lines))
    sys.exit(0 if healthy else 1)


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
