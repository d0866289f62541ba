"""`docqueue up` serves this machine only unless told, and keeps gunicorn's control socket to itself.

A real `docqueue up` (with the test run's Postgres and Redis) must answer on
127.0.0.1 and refuse a connection on the machine's network address, and
its gunicorn's control socket must lie under DOCQUEUE_HOME, not in the
user's home where every `up` of the user would share one.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
import requests

from tests.support.processes import free_port, wait_until

DOCQUEUE = Path(sys.executable).parent / "docqueue"


def network_address() -> str | None:
    """An IPv4 address of this machine other than loopback, if it has one."""
    for addresses in psutil.net_if_addrs().values():
        for address in addresses:
            if address.family == socket.AF_INET and not address.address.startswith("127."):
                return address.address
    return None


def connects(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def test_up_binds_loopback_and_keeps_its_control_socket_under_docqueue_home(test_env, tmp_path):
    outside = network_address()
    if outside is None:
        pytest.skip("this machine has no network address besides loopback to try")
    port, home, user_home = free_port(), tmp_path / "dq", tmp_path / "user"
    user_home.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"}
    env.update(test_env, DOCQUEUE_HOME=str(home), HOME=str(user_home), PDF_WORKER_PROCESSES="1")
    log = (tmp_path / "up.log").open("wb")
    up = subprocess.Popen(
        [str(DOCQUEUE), "up", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    output = tmp_path / "up.log"
    try:
        wait_until(lambda: "docqueue is up: " in output.read_text(), timeout=180, message=output.read_text)
        assert f"docqueue is up: http://127.0.0.1:{port}/" in output.read_text()
        assert requests.get(f"http://127.0.0.1:{port}/healthz", timeout=10).status_code == 200
        assert not connects(outside, port), f"the web answered on {outside}, the machine's network address"
        control = home / "gunicorn.ctl"
        wait_until(control.is_socket, timeout=30, message="gunicorn's control socket under DOCQUEUE_HOME")
        assert not (user_home / ".gunicorn").exists()
    finally:
        if up.poll() is None:
            os.killpg(up.pid, signal.SIGINT)
            up.wait(timeout=90)
        log.close()
    assert up.returncode == 0, output.read_text()
