"""The Procfile's web, worker and clock under honcho, for `docqueue up`.

Honcho forks one relay process per command, which starts the command in a
session of its own. Both are tied to `up` with PR_SET_PDEATHSIG: if `up` is
SIGKILLed the relays die at once and each command gets SIGTERM, the same
graceful stop Ctrl-C gives it.
"""

from __future__ import annotations

import datetime
import functools
import os
import signal
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import click
import honcho.manager
import honcho.process
import psutil
from honcho.printer import Message

from docqueue.local.parent_death import die_with_parent
from docqueue.local.procfile import REPO_ROOT
from docqueue.local.state import RecordedProcess, UpState, write_state

PROCESSES = ("web", "worker", "clock")
# Honcho SIGKILLs whatever still runs this long after the first process exits.
# Its default of 5 s would cut short the 25 s graceful stops the Procfile gives
# gunicorn and dramatiq, killing documents mid-stage.
STOP_GRACE_SECONDS = 30


class _TiedProcess(honcho.process.Process):
    """Honcho's Process, whose relay and command both die with `up`."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.up_pid = os.getpid()

    def run(self, events=None, ignore_signals=False):
        # This runs in the relay, forked from `up`. SIGKILL: honcho has the relay ignore SIGTERM.
        die_with_parent(signal.SIGKILL, self.up_pid)
        self._child_ctor = functools.partial(
            honcho.process.Popen, preexec_fn=functools.partial(die_with_parent, signal.SIGTERM, os.getpid())
        )
        super().run(events, ignore_signals)


class _Manager(honcho.manager.Manager):
    """Honcho's Manager with tied processes, also remembering which process, if any, exited on its own."""

    exited_first: str | None = None

    def __init__(self) -> None:
        super().__init__()
        self._process_ctor = _TiedProcess

    def terminate(self):
        # Honcho calls this on SIGINT/SIGTERM (before anything has exited) and when
        # a process exits by itself (after its exit was recorded), so look at which.
        if not self._terminating:
            exited = [name for name, process in self._processes.items() if "returncode" in process]
            self.exited_first = exited[0] if exited else None
        super().terminate()

    def started_pids(self) -> dict[str, int]:
        """The pid of each command honcho has reported started so far."""
        return {name: process["pid"] for name, process in list(self._processes.items()) if "pid" in process}


def run_processes(
    procfile: dict[str, str],
    home: Path,
    state: UpState,
    on_started: Callable[[Callable[[str], None], threading.Event], None] | None = None,
) -> int:
    """Run web, worker and clock until a signal or until one of them exits; return the exit code.

    `on_started(say, stopping)` is called once all three have started (honcho forks no more): `say`
    prints a line in order with their output, `stopping` is set when they are being stopped.
    """
    honcho.manager.KILL_WAIT = STOP_GRACE_SECONDS
    manager = _Manager()
    for name in PROCESSES:
        # Honcho runs each command with `sh -c`, and dash does not exec the command: the shell
        # would die of honcho's SIGTERM at once, leaving the process orphaned and its exit code lost.
        command = f"exec {procfile[name]}"
        manager.add_process(name, command, env=os.environ.copy(), cwd=str(REPO_ROOT))
    stopping = threading.Event()
    threading.Thread(target=watch, args=(manager, home, state, stopping, on_started), daemon=True).start()
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


def watch(
    manager: _Manager,
    home: Path,
    state: UpState,
    stopping: threading.Event,
    on_started: Callable[[Callable[[str], None], threading.Event], None] | None = None,
) -> None:
    """Record the commands' pids in `up.json` once all have started, then print the URL once the web answers."""
    # Wait out honcho's forks: forking while this thread holds a lock would copy the lock held.
    stopping.wait(1.0)
    while len(pids := manager.started_pids()) < len(PROCESSES):
        if stopping.wait(0.1):
            return
    record_processes(home, state, pids)
    if on_started is not None:
        on_started(functools.partial(_say, manager), stopping)
    url = state.web_url
    while not stopping.wait(0.5):
        try:
            with urllib.request.urlopen(url + "healthz", timeout=2) as response:
                if response.status != 200:
                    continue
        except (OSError, urllib.error.URLError):
            continue
        _say(manager, f"docqueue is up: {url}  (Ctrl-C or `docqueue down` stops everything)")
        return


def _say(manager: _Manager, text: str) -> None:
    """Print a line of `up`'s own through honcho's event queue, in order with the processes' output."""
    manager.events.put(
        Message(
            type="line",
            data=f"{text}\n",
            time=datetime.datetime.now(),
            name=honcho.manager.SYSTEM_PRINTER_NAME,
            colour=None,
        )
    )


def record_processes(home: Path, state: UpState, pids: dict[str, int]) -> None:
    """Note each command (leader of its own process group) in `up.json`."""
    for name, pid in pids.items():
        try:
            state.processes.append(RecordedProcess.of(name, pid, group=True))
        except psutil.NoSuchProcess:  # exited already: honcho is stopping the rest
            pass
    write_state(home, state)
