"""Other commands' view of a `docqueue up` run in this folder: find its servers, report on it, stop it."""

from __future__ import annotations

import os
import signal
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from docqueue.local.leftovers import stop_leftovers
from docqueue.local.processes import STOP_GRACE_SECONDS
from docqueue.local.state import lock_is_held, read_state, remove_state, wait_for_unlock

#: `down` waits this long beyond the processes' own grace for `up` to finish stopping the servers.
DOWN_EXTRA_SECONDS = 60


def use_embedded_servers(home: Path) -> str | None:
    """Point DATABASE_URL and REDIS_URL at the embedded servers of the `up` in `home`, when neither is set.

    Returns a line saying which servers were chosen, or None when the environment already names servers
    or no embedded ones are running.
    """
    if os.environ.get("DATABASE_URL") or os.environ.get("REDIS_URL"):
        return None
    state = read_state(home)
    if state is None or not state.embedded_servers_running():
        return None
    os.environ["DATABASE_URL"], os.environ["REDIS_URL"] = state.database_url, state.redis_url
    servers = ", ".join(server.describe() for server in state.servers)
    return f"using the embedded servers of `docqueue up` (pid {state.pid}) in {home}: {servers}"


def status_lines(home: Path) -> tuple[bool, list[str]]:
    """Whether an `up` runs here with a healthy web process, and lines describing what runs."""
    state = read_state(home)
    if state is None:
        held = lock_is_held(home)
        return False, [f"docqueue up: {'starting' if held else 'not running'} (data in {home})"]
    running = state.up_process().running()
    lines = [f"docqueue up: {'running' if running else 'NOT running'} (pid {state.pid}, data in {home})"]
    healthy = running and _web_health(state.web_url, lines)
    for process in [*state.servers, *state.processes]:
        lines.append(f"  {process.name}: pid {process.pid}, {'running' if process.running() else 'gone'}")
    gone = [server.name for server in state.servers if not server.running()]
    if running and gone:
        lines.append(
            f"  {' and '.join(gone)} gone: `docqueue up` starts a dead embedded server again within seconds and "
            f"says so in its output; if it stays gone, run `docqueue down` and then `docqueue up`"
        )
    if state.database_url:
        lines += [f"  DATABASE_URL={state.database_url}", f"  REDIS_URL={state.redis_url}"]
    if not running and state.leftovers():
        lines.append("  left over from a killed run: `docqueue down` stops them")
    return healthy, lines


def _web_health(web_url: str, lines: list[str]) -> bool:
    try:
        with urllib.request.urlopen(web_url + "healthz", timeout=5) as response:
            lines.append(f"  web: {web_url} healthy")
            return response.status == 200
    except urllib.error.HTTPError as error:
        lines.append(f"  web: {web_url} unhealthy: {error.read().decode(errors='replace').strip()}")
    except OSError as error:
        lines.append(f"  web: {web_url} not answering ({getattr(error, 'reason', error)})")
    return False


def bring_down(home: Path, say: Callable[[str], None]) -> bool:
    """Stop the `up` running in `home` gracefully, or what a killed one left; False if it would not stop."""
    state = read_state(home)
    if state is not None and state.up_process().running():
        say(f"stopping docqueue up (pid {state.pid})")
        os.kill(state.pid, signal.SIGTERM)  # what Ctrl-C does: honcho stops the processes, then `up` the servers
        if not wait_for_unlock(home, STOP_GRACE_SECONDS + DOWN_EXTRA_SECONDS):
            say(f"docqueue up (pid {state.pid}) is still stopping; `docqueue status` shows what runs")
            return False
        say("stopped")
        return True
    if state is not None and stop_leftovers(state, say):
        remove_state(home)
        say("stopped")
        return True
    if state is not None:
        remove_state(home)
    say(f"no docqueue up is running in {home}")
    return True
