"""`docqueue up`: the whole system on one machine with one command.

Steps, each a function below: start embedded Postgres and Redis (unless
DATABASE_URL and REDIS_URL say where real ones are), keep a SECRET_KEY,
run the Procfile's `release` command, create a first admin, then run the
Procfile's web, worker and clock under honcho until Ctrl-C or SIGTERM
(`docqueue down` sends it). What runs is recorded in `up.json` (see
`docqueue.local.state`) and a guardian process stops it if `up` is killed.
An embedded server that dies meanwhile is started again
(`docqueue.local.server_watch`).

The web and worker code is only ever run as Procfile subprocesses: this
module must not import `web` or `actors`.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

import click
from sqlalchemy import select

from docqueue.local.embedded import EmbeddedServers
from docqueue.local.leftovers import stop_leftovers
from docqueue.local.processes import PROCESSES, run_processes
from docqueue.local.procfile import REPO_ROOT, procfile_commands, with_local_scripts
from docqueue.local.server_watch import ServerWatch
from docqueue.local.state import LOCK_FILE, RecordedProcess, UpState, new_state, read_state, remove_state, write_state
from docqueue.settings import docqueue_home

ADMIN_EMAIL = "admin@localhost"
#: How long a new `up` waits for the guardian of a killed one to finish stopping its leftovers.
LEFTOVER_WAIT_SECONDS = 60
#: How long a lock held without `up.json` may be the guardian of a cleanly stopped run, briefly looking.
STARTING_WAIT_SECONDS = 3


#: Where `up` serves unless told (`--host`): this machine only. A laptop's development server, with its
#: first admin and an unencrypted login form, is not for the café's network.
DEFAULT_HOST = "127.0.0.1"
#: Addresses that mean "every interface": the URL to print for them is the loopback one.
_ANY_ADDRESS = ("0.0.0.0", "::", "")


def run_up(port: int, host: str = DEFAULT_HOST) -> int:
    """Run everything until stopped, serving on `host`:`port`; return the exit code (0 after a clean stop)."""
    # Until honcho installs its own handlers, turn SIGTERM into KeyboardInterrupt so
    # the `finally` below still stops the servers if we are stopped during start-up.
    signal.signal(signal.SIGTERM, _interrupt)
    home = docqueue_home(create=True)
    _lock = lock_home(home)  # noqa: F841  (held until this process exits)
    ensure_port_free(host, port)
    procfile = read_procfile()
    stop_previous_leftovers(home)
    state = new_state(web_url(host, port))
    write_state(home, state)
    _guardian = start_guardian(home)  # noqa: F841  (its pipe stays open until this process exits)
    servers = None
    try:
        servers = start_servers(home)
        record_servers(home, state, servers)
        configure_environment(servers, ensure_secret_key(home), host, port, home)
        apply_migrations(procfile["release"])
        ensure_admin()
        return run_processes(procfile, home, state, on_started=watch_servers(home, state, servers))
    except KeyboardInterrupt:
        click.echo("interrupted during start-up")
        return 0
    finally:
        stop_servers(servers)
        remove_state(home)


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def lock_home(home: Path) -> IO:
    """Refuse a second `up` on the same data: both would use one Postgres, and the first to stop would stop it."""
    lock = open(home / LOCK_FILE, "w")
    started = time.monotonic()
    while True:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return lock
        except BlockingIOError:
            pass
        state = read_state(home)
        waited = time.monotonic() - started
        up_running = state.up_process().running() if state else waited > STARTING_WAIT_SECONDS
        if up_running:
            pid = f" (pid {state.pid})" if state else ""
            raise click.ClickException(
                f"another `docqueue up`{pid} is already running with the data in {home}; "
                f"stop it with `docqueue down` (or Ctrl-C in its terminal), or see it with `docqueue status`"
            )
        # `up` itself is gone (or just starting): its guardian, or processes it forked, hold the lock a moment.
        if waited > LEFTOVER_WAIT_SECONDS:
            raise click.ClickException(
                f"the `docqueue up` (pid {state.pid}) that used {home} was killed and what it started "
                f"has not stopped within {LEFTOVER_WAIT_SECONDS} s; run `docqueue down` to stop it"
            )
        time.sleep(0.2)


def stop_previous_leftovers(home: Path) -> None:
    """Stop what an earlier `up` that was killed left running (its guardian normally has already)."""
    state = read_state(home)
    if state is not None:
        if stop_leftovers(state, click.echo):
            click.echo("stopped what the previous run left running")
        remove_state(home)


def start_guardian(home: Path) -> subprocess.Popen:
    """Start the process that stops our servers if we are killed (see `docqueue.local.guardian`)."""
    return subprocess.Popen(
        [sys.executable, "-m", "docqueue.local.guardian", str(home), str(os.getpid())],
        stdin=subprocess.PIPE,
        start_new_session=True,
    )


def web_url(host: str, port: int) -> str:
    """The address to open in a browser for a web served on `host`:`port`."""
    if host in _ANY_ADDRESS:
        host = DEFAULT_HOST
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def ensure_port_free(host: str, port: int) -> None:
    """Fail before starting anything if the web process could not bind `host`:`port`."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    except socket.gaierror:
        raise click.ClickException(f"--host {host!r} is not an address of this machine") from None
    with socket.socket(family) as probe:
        # SO_REUSEADDR like gunicorn, so a port left in TIME_WAIT does not count as taken.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            taken = error.errno == errno.EADDRINUSE
            reason = f"port {port} is already in use; choose another with --port" if taken else str(error)
            raise click.ClickException(f"cannot serve on {host}:{port}: {reason}") from None


def read_procfile() -> dict[str, str]:
    """The Procfile's commands by process name, checked to have every entry `up` runs."""
    processes = procfile_commands()
    missing = [name for name in ("release", *PROCESSES) if name not in processes]
    if missing:
        raise click.ClickException(f"the Procfile in {REPO_ROOT} has no {', '.join(missing)} entry")
    return processes


def start_servers(home: Path) -> EmbeddedServers | None:
    """Start embedded Postgres and Redis under `home`, or None when the environment names real servers."""
    database_url, redis_url = os.environ.get("DATABASE_URL"), os.environ.get("REDIS_URL")
    if database_url and redis_url:
        click.echo("using the Postgres and Redis at DATABASE_URL and REDIS_URL")
        return None
    if database_url or redis_url:
        raise click.ClickException("set both DATABASE_URL and REDIS_URL, or neither to use embedded servers")
    from docqueue.local.embedded import start_embedded_servers

    logging.getLogger("pgserver").setLevel(logging.WARNING)  # its start-up chatter is INFO
    click.echo(f"starting embedded Postgres and Redis (data in {home})")
    return start_embedded_servers(home)


def record_servers(home: Path, state: UpState, servers: EmbeddedServers | None) -> None:
    """Note the embedded servers in `up.json`: other commands find them there, and the guardian stops them."""
    if servers is None:
        return
    state.database_url, state.redis_url = servers.database_url, servers.redis_url
    state.servers = [
        # SIGINT is Postgres's fast shutdown: it does not wait for clients that may be gone.
        RecordedProcess.of("postgres", servers.postgres_pid, stop_signal=signal.SIGINT),
        RecordedProcess.of("redis", servers.redis_pid),
    ]
    write_state(home, state)


def watch_servers(home: Path, state: UpState, servers: EmbeddedServers | None) -> Callable[..., None] | None:
    """What starts the watch that restarts a dead embedded server (see `docqueue.local.server_watch`); None for real ones.

    It starts once the Procfile's processes have: starting a thread before honcho forks could copy a held lock.
    """
    if servers is None:
        return None

    def start(say, stopping) -> None:
        ServerWatch(home, state, servers, say, stopping).start()

    return start


def stop_servers(servers: EmbeddedServers | None) -> None:
    """Stop the embedded servers (their data stays for next time)."""
    if servers is not None:
        click.echo("stopping embedded Redis and Postgres")
        servers.stop()
        click.echo("stopped")


def ensure_secret_key(home: Path) -> str:
    """SECRET_KEY from the environment, else the one kept in `home`, made on first run.

    Kept on disk so browser sessions survive a restart.
    """
    if os.environ.get("SECRET_KEY"):
        return os.environ["SECRET_KEY"]
    path = home / "secret_key"
    if not path.exists():
        # O_EXCL with mode 0600: the key is never readable by others, not even briefly.
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(secrets.token_hex(32))
    return path.read_text().strip()


def configure_environment(servers: EmbeddedServers | None, secret_key: str, host: str, port: int, home: Path) -> None:
    """Put the settings in this process's environment, which every command started from here inherits."""
    if servers is not None:
        os.environ["DATABASE_URL"] = servers.database_url
        os.environ["REDIS_URL"] = servers.redis_url
    os.environ["SECRET_KEY"] = secret_key
    os.environ["PORT"] = str(port)
    os.environ["WEB_HOST"] = host  # the Procfile's web binds it (0.0.0.0 when unset, as a PaaS needs)
    # This run's own control socket: gunicorn's default is one per user, shared by every `up`.
    os.environ["WEB_CONTROL_SOCKET"] = str(home / "gunicorn.ctl")
    # Prompt, unmixed log lines through honcho's pipes.
    os.environ["PYTHONUNBUFFERED"] = "1"
    os.environ["PATH"] = with_local_scripts(os.environ)["PATH"]
    from docqueue.settings import get_settings

    get_settings.cache_clear()


def apply_migrations(release_command: str) -> None:
    """Run the Procfile's `release` command, exactly as a PaaS would before a deploy."""
    click.echo(f"applying migrations: {release_command}")
    result = subprocess.run(
        release_command, shell=True, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    if result.returncode != 0:
        raise click.ClickException(f"migrations failed (exit code {result.returncode}):\n{result.stdout}")


def ensure_admin() -> None:
    """On an empty database create admin@localhost and print its password and API token, once."""
    from docqueue.accounts.users import count_users, create_user
    from docqueue.db import get_engine, session_scope
    from docqueue.models import User

    try:
        with session_scope() as session:
            if count_users(session) == 0:
                password = secrets.token_urlsafe(12)
                _, token = create_user(session, ADMIN_EMAIL, password, role="admin")
                _print_admin(password, token)
            elif session.scalar(select(User.id).where(User.email == ADMIN_EMAIL)) is not None:
                click.echo(f"admin {ADMIN_EMAIL} already exists (lost its password? `docqueue user set-password`)")
            else:
                click.echo(f"the database already has users, so no {ADMIN_EMAIL} was created")
    finally:
        # Close our connections before honcho forks: children must not share them.
        get_engine().dispose()


def _print_admin(password: str, token: str) -> None:
    rule = "=" * 72
    click.echo(
        f"{rule}\n"
        f"Created the admin account. Save these now: they are not shown again.\n"
        f"  login:     {ADMIN_EMAIL}\n"
        f"  password:  {password}\n"
        f"  API token: {token}\n"
        f"{rule}"
    )
