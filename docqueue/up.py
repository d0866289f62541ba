"""`docqueue up`: the whole system on one machine with one command.

Steps, each a function below: start embedded Postgres and Redis (unless
DATABASE_URL and REDIS_URL say where real ones are), keep a SECRET_KEY,
run the Procfile's `release` command, create a first admin, then run the
Procfile's web, worker and clock under honcho until Ctrl-C or SIGTERM.

The web and worker code is only ever run as Procfile subprocesses: this
module must not import `web` or `actors`.
"""

from __future__ import annotations

import datetime
import fcntl
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO

import click
import honcho.manager
from honcho.printer import Message
from sqlalchemy import select

from docqueue.embedded import EmbeddedServers
from docqueue.procfile import REPO_ROOT, procfile_commands, with_local_scripts

ADMIN_EMAIL = "admin@localhost"
PROCESSES = ("web", "worker", "clock")
# Honcho SIGKILLs whatever still runs this long after the first process exits.
# Its default of 5 s would cut short the 25 s graceful stops the Procfile gives
# gunicorn and dramatiq, killing documents mid-stage.
STOP_GRACE_SECONDS = 30


def run_up(port: int) -> int:
    """Run everything until stopped; return the exit code (0 after a clean stop)."""
    # Until honcho installs its own handlers, turn SIGTERM into KeyboardInterrupt so
    # the `finally` below still stops the servers if we are stopped during start-up.
    signal.signal(signal.SIGTERM, _interrupt)
    home = docqueue_home()
    _lock = lock_home(home)
    ensure_port_free(port)
    procfile = read_procfile()
    servers = start_servers(home)
    try:
        configure_environment(servers, ensure_secret_key(home), port)
        apply_migrations(procfile["release"])
        ensure_admin()
        return run_processes(procfile, port)
    except KeyboardInterrupt:
        click.echo("interrupted during start-up")
        return 0
    finally:
        stop_servers(servers)


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def docqueue_home() -> Path:
    """Where `up` keeps its data: DOCQUEUE_HOME, else ./.docqueue."""
    home = Path(os.environ.get("DOCQUEUE_HOME") or ".docqueue").resolve()
    home.mkdir(parents=True, exist_ok=True)
    return home


def lock_home(home: Path) -> IO:
    """Refuse a second `up` on the same data: both would use one Postgres, and the first to stop would stop it."""
    lock = open(home / "up.lock", "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise click.ClickException(f"another `docqueue up` is already running with the data in {home}") from None
    return lock


def ensure_port_free(port: int) -> None:
    """Fail before starting anything if the web process could not bind its port."""
    with socket.socket() as probe:
        # SO_REUSEADDR like gunicorn, so a port left in TIME_WAIT does not count as taken.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("0.0.0.0", port))
        except OSError:
            raise click.ClickException(f"port {port} is already in use; choose another with --port") from None


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
    from docqueue.embedded import start_embedded_servers

    logging.getLogger("pgserver").setLevel(logging.WARNING)  # its start-up chatter is INFO
    click.echo(f"starting embedded Postgres and Redis (data in {home})")
    return start_embedded_servers(home)


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


def configure_environment(servers: EmbeddedServers | None, secret_key: str, port: int) -> None:
    """Put the settings in this process's environment, which every command started from here inherits."""
    if servers is not None:
        os.environ["DATABASE_URL"] = servers.database_url
        os.environ["REDIS_URL"] = servers.redis_url
    os.environ["SECRET_KEY"] = secret_key
    os.environ["PORT"] = str(port)
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
    from docqueue.db import get_engine, session_scope
    from docqueue.models import User
    from docqueue.users import count_users, create_user

    try:
        with session_scope() as session:
            if count_users(session) == 0:
                password = secrets.token_urlsafe(12)
                _, token = create_user(session, ADMIN_EMAIL, password, role="admin")
                _print_admin(password, token)
            elif session.scalar(select(User.id).where(User.email == ADMIN_EMAIL)) is not None:
                click.echo(f"admin {ADMIN_EMAIL} already exists (its password was shown on the first run only)")
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


class _Manager(honcho.manager.Manager):
    """Honcho's Manager, also remembering which process, if any, exited on its own."""

    exited_first: str | None = None

    def terminate(self):
        # Honcho calls this on SIGINT/SIGTERM (before anything has exited) and when
        # a process exits by itself (after its exit was recorded), so look at which.
        if not self._terminating:
            exited = [name for name, process in self._processes.items() if "returncode" in process]
            self.exited_first = exited[0] if exited else None
        super().terminate()


def run_processes(procfile: dict[str, str], port: int) -> int:
    """Run web, worker and clock until a signal or until one of them exits; return the exit code."""
    honcho.manager.KILL_WAIT = STOP_GRACE_SECONDS
    manager = _Manager()
    for name in PROCESSES:
        # Honcho runs each command with `sh -c`, and dash does not exec the command: the shell
        # would die of honcho's SIGTERM at once, leaving the process orphaned and its exit code lost.
        command = f"exec {procfile[name]}"
        manager.add_process(name, command, env=os.environ.copy(), cwd=str(REPO_ROOT))
    stopping = threading.Event()
    threading.Thread(target=announce_when_healthy, args=(manager, port, stopping), daemon=True).start()
    sys.stdout.flush()  # honcho forks: nothing of ours may sit in a buffer copied to the children
    try:
        # Honcho sends SIGTERM to each process group on SIGINT/SIGTERM or when any
        # process exits, and SIGKILL after STOP_GRACE_SECONDS.
        manager.loop()
    finally:
        stopping.set()
    if manager.exited_first is not None:
        code = manager.returncode  # honcho keeps the first exit code it saw
        how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
        click.echo(f"error: the {manager.exited_first} process {how} on its own; stopped the others", err=True)
        return 1
    return 0


def announce_when_healthy(manager: honcho.manager.Manager, port: int, stopping: threading.Event) -> None:
    """Print the URL, once, as soon as the web process answers /healthz."""
    url = f"http://127.0.0.1:{port}/"
    # Wait out honcho's forks: forking while this thread holds a lock would copy the lock held.
    stopping.wait(1.0)
    while not stopping.wait(0.5):
        try:
            with urllib.request.urlopen(url + "healthz", timeout=2) as response:
                if response.status != 200:
                    continue
        except (OSError, urllib.error.URLError):
            continue
        # Through honcho's event queue, so the line is printed in order with the processes' output.
        manager.events.put(
            Message(
                type="line",
                data=f"docqueue is up: {url}  (Ctrl-C stops everything)\n",
                time=datetime.datetime.now(),
                name=honcho.manager.SYSTEM_PRINTER_NAME,
                colour=None,
            )
        )
        return
