"""The `docqueue` command: run the whole system, manage users, run the clock."""

from __future__ import annotations

import click

from docqueue.cli.local_run import down, status, up
from docqueue.cli.processing import clock, dispatch, ingest
from docqueue.cli.users import user
from docqueue.observability import configure_logging
from docqueue.settings import SettingsError

#: Commands that manage `docqueue up` itself rather than use the servers it started.
UP_COMMANDS = ("up", "down", "status")


class _Commands(click.Group):
    """Report a missing or malformed setting as one line, not a traceback."""

    def invoke(self, ctx):
        # A subcommand's --help only prints: it must not look for servers, nor say which it chose.
        ctx.meta["help_only"] = any(arg in ctx.help_option_names for arg in ctx.args)
        try:
            return super().invoke(ctx)
        except SettingsError as error:
            raise click.ClickException(str(error)) from None


@click.group(cls=_Commands)
@click.pass_context
def main(ctx: click.Context) -> None:
    """docqueue: durable document processing."""
    configure_logging()
    if ctx.invoked_subcommand not in UP_COMMANDS and not ctx.meta["help_only"]:
        from docqueue.local.control import use_embedded_servers
        from docqueue.settings import docqueue_home, get_settings

        if chosen := use_embedded_servers(docqueue_home()):
            click.echo(chosen, err=True)
            get_settings.cache_clear()


main.add_command(user)
main.add_command(up)
main.add_command(down)
main.add_command(status)
main.add_command(clock)
main.add_command(dispatch)
main.add_command(ingest)
