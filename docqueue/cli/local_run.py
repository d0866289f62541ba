"""`docqueue up`, `down` and `status`: run the whole system on this machine, stop it, say what it runs."""

from __future__ import annotations

import sys

import click


@click.command()
@click.option("--port", default=8000, show_default=True, help="Port the web process listens on.")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address the web process listens on; 0.0.0.0 lets other machines of the network reach it.",
)
def up(port: int, host: str) -> None:
    """Run everything on this machine: Postgres, Redis, migrations, web, worker and clock.

    Without DATABASE_URL and REDIS_URL it starts embedded servers keeping their
    data in ./.docqueue (or DOCQUEUE_HOME). Ctrl-C or `docqueue down` stops it all.
    """
    from docqueue.local.up import run_up

    sys.exit(run_up(port, host))


@click.command()
def down() -> None:
    """Stop the `docqueue up` running in this folder (as Ctrl-C in its terminal would), or what a killed one left."""
    from docqueue.local.control import bring_down
    from docqueue.settings import docqueue_home

    if not bring_down(docqueue_home(), click.echo):
        sys.exit(1)


@click.command()
def status() -> None:
    """Show what `docqueue up` runs in this folder: pids, URLs, whether the web answers. Exit 0 when healthy."""
    from docqueue.local.control import status_lines
    from docqueue.settings import docqueue_home

    healthy, lines = status_lines(docqueue_home())
    click.echo("\n".join(lines))
    sys.exit(0 if healthy else 1)
