"""The first hour with `docqueue up`, as a newcomer lives it, with no DATABASE_URL or REDIS_URL anywhere.

Beside a running `up`, every `docqueue` command finds its embedded servers;
users get passwords and tokens reset; `kill -9` of `up` leaves nothing
running (its guardian stops the daemonised servers, the Procfile processes
die with it), and when even the guardian is killed the next `up` stops the
leftovers itself; the next `up` starts cleanly with the data intact; and
`docqueue down` stops it from another terminal.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
import requests

from tests.support.processes import free_port, wait_until
from tests.support.up import DOCQUEUE, FOREIGN_SETTINGS, UpProcess, started_processes

USING_EMBEDDED = re.compile(r"using the embedded servers of `docqueue up` \(pid (\d+)\) in (\S+): postgres \(pid \d+\)")


def docqueue(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    """Run a `docqueue` command in `cwd` as a user would in a second terminal: no server settings."""
    env = {k: v for k, v in os.environ.items() if k not in FOREIGN_SETTINGS}
    return subprocess.run([str(DOCQUEUE), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def succeeds(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    result = docqueue(cwd, *args)
    assert result.returncode == 0, f"docqueue {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result


def log_in(base_url: str, email: str, password: str) -> requests.Response:
    """The browser's login: fetch the form for its CSRF token, post it; the answer, not followed."""
    browser = requests.Session()
    form = browser.get(f"{base_url}login", timeout=10).text
    csrf = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', form) or re.search(
        r'name="csrf_token" value="([^"]+)"', form
    )
    return browser.post(
        f"{base_url}login",
        data={"csrf_token": csrf.group(1), "email": email, "password": password},
        allow_redirects=False,
        timeout=10,
    )


def api(base_url: str, token: str, path: str) -> requests.Response:
    return requests.get(f"{base_url}api/{path}", headers={"Authorization": f"Bearer {token}"}, timeout=10)


def nothing_left(cwd: Path) -> bool:
    return started_processes(cwd) == []


def still_running(cwd: Path, up: UpProcess) -> Callable[[], str]:
    """A failure message naming what is left running, with `up`'s output (the guardian's lines are in it)."""

    def describe() -> str:
        left = []
        for process in started_processes(cwd):
            try:
                left.append(f"{process.pid} {' '.join(process.cmdline())[:160]}")
            except psutil.Error:
                continue
        return "everything up started to stop; still running:\n" + "\n".join(left) + "\n" + up.output()

    return describe


@pytest.fixture
def no_runtime_dir(monkeypatch):
    """As in a container or an ssh session: the case that printed RuntimeDirWarning."""
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)


def test_commands_beside_up_and_nothing_left_after_kill_9(tmp_path, no_runtime_dir):
    port = free_port()
    home = tmp_path / ".docqueue"

    first = UpProcess(tmp_path, port)
    try:
        first.wait_for(re.escape(first.url), timeout=120)
        assert "XDG_RUNTIME_DIR" not in first.output()

        # Every command finds the embedded servers and says so on stderr.
        created = succeeds(tmp_path, "user", "create", "newcomer@example.com", "--password", "first password")
        match = USING_EMBEDDED.search(created.stderr)
        assert match and int(match.group(1)) == first.process.pid and match.group(2) == str(home)
        old_token = created.stdout.strip().splitlines()[-1]
        assert api(first.url, old_token, "documents").status_code == 200
        assert USING_EMBEDDED.search(succeeds(tmp_path, "dispatch").stderr)

        # Passwords and tokens can be reset; the old ones stop working.
        succeeds(tmp_path, "user", "set-password", "newcomer@example.com", "--password", "second password")
        assert log_in(first.url, "newcomer@example.com", "first password").status_code == 401
        assert log_in(first.url, "newcomer@example.com", "second password").headers["Location"] == "/"
        token = succeeds(tmp_path, "user", "token", "newcomer@example.com").stdout.strip().splitlines()[-1]
        assert api(first.url, old_token, "documents").status_code == 401
        assert api(first.url, token, "documents").status_code == 200
        listed = succeeds(tmp_path, "user", "list").stdout
        assert re.search(r"admin@localhost\s+admin", listed) and re.search(r"newcomer@example.com\s+viewer", listed)
        unknown = docqueue(tmp_path, "user", "token", "nobody@example.com")
        assert unknown.returncode == 1 and "no user has the email nobody@example.com" in unknown.stderr

        status = succeeds(tmp_path, "status").stdout
        assert f"docqueue up: running (pid {first.process.pid}" in status
        assert f"web: {first.url} healthy" in status
        for name in ("postgres", "redis", "web", "worker", "clock"):
            assert re.search(rf"{name}: pid \d+, running", status), status
        # Redis keeps its socket, config and log in the project's .docqueue, not in /tmp.
        assert f"REDIS_URL=unix://{home}/redis/redis.sock" in status
        assert (home / "redis" / "redis.config").exists() and (home / "redis" / "redis.log").exists()

        # A second `up` names the running one and how to stop it.
        second_up = docqueue(tmp_path, "up", "--port", str(free_port()))
        assert second_up.returncode == 1
        assert f"another `docqueue up` (pid {first.process.pid}) is already running" in second_up.stderr
        assert "docqueue down" in second_up.stderr

        # kill -9: no chance to clean up, yet nothing it started survives.
        os.kill(first.process.pid, signal.SIGKILL)
        first.process.wait(timeout=10)
        wait_until(lambda: nothing_left(tmp_path), timeout=90, interval=0.5, message=still_running(tmp_path, first))
        first.wait_for_eof()
        assert "ended without stopping what it started" in first.output()
    finally:
        first.kill()

    # The next `up` starts cleanly on the same data; this time its guardian is killed too.
    second = UpProcess(tmp_path, port)
    try:
        second.wait_for(re.escape(second.url), timeout=120)
        assert "admin admin@localhost already exists" in second.output()
        assert api(second.url, token, "documents").status_code == 200
        guardian = [p for p in started_processes(tmp_path) if "docqueue.local.guardian" in " ".join(p.cmdline())]
        assert len(guardian) == 1
        guardian[0].kill()
        os.kill(second.process.pid, signal.SIGKILL)
        second.process.wait(timeout=10)

        # The Procfile processes die with `up` on their own; the daemonised servers cannot.
        def only_servers_left():
            names = {p.name() for p in started_processes(tmp_path)}
            return names and names <= {"postgres", "redis-server"} and {"postgres", "redis-server"} <= names

        wait_until(only_servers_left, timeout=90, interval=0.5, message="the Procfile processes to die with up")
        leftover = docqueue(tmp_path, "status")
        assert leftover.returncode == 1
        assert f"docqueue up: NOT running (pid {second.process.pid}" in leftover.stdout
        assert "left over from a killed run: `docqueue down` stops them" in leftover.stdout
    finally:
        if second.process.poll() is None:
            second.kill()

    # The third `up` stops those leftovers itself, says so, and starts with the data intact.
    third = UpProcess(tmp_path, port)
    try:
        third.wait_for("stopped what the previous run left running", timeout=120)
        third.wait_for(re.escape(third.url), timeout=120)
        assert log_in(third.url, "newcomer@example.com", "second password").headers["Location"] == "/"
        assert api(third.url, token, "documents").status_code == 200

        # `docqueue down` from another terminal stops it the way Ctrl-C would.
        down = succeeds(tmp_path, "down")
        assert f"stopping docqueue up (pid {third.process.pid})" in down.stdout and "stopped" in down.stdout
        assert third.process.wait(timeout=60) == 0, third.output()
        wait_until(lambda: nothing_left(tmp_path), timeout=30, interval=0.5, message=still_running(tmp_path, third))
        assert "no docqueue up is running" in succeeds(tmp_path, "down").stdout
        assert not (home / "up.json").exists()
        stopped = docqueue(tmp_path, "status")
        assert stopped.returncode == 1 and "docqueue up: not running" in stopped.stdout
    finally:
        third.kill()
