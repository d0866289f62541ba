"""`docqueue up` starts a dead embedded server again (issue 18): `kill -9` of Postgres, then of Redis, as a user
might by mistake, and the service comes back by itself, saying so, with the clock quiet meanwhile."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest
import requests

from tests.support.processes import CORPUS, free_port, wait_until
from tests.support.up import DOCQUEUE, UpProcess, started_processes, upload


def recorded_server_pid(home, name: str) -> int:
    state = json.loads((home / "up.json").read_text())
    return next(server["pid"] for server in state["servers"] if server["name"] == name)


def docqueue_status(cwd) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "REDIS_URL", "DOCQUEUE_HOME")}
    return subprocess.run([str(DOCQUEUE), "status"], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


@pytest.fixture
def up_folder():
    """A folder of the test's own, not under pytest's tmp_path: other pytest runs on the machine make
    /tmp/pytest-of-<user> private again, which shuts out the user embedded Postgres runs as (under root)."""
    folder = Path(tempfile.mkdtemp(prefix="docqueue-up-restarts-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_up_starts_a_killed_embedded_server_again_and_says_so(up_folder):
    tmp_path = up_folder
    home = tmp_path / ".docqueue"
    up = UpProcess(tmp_path, free_port())
    try:
        token = up.wait_for(r"API token:\s*(\S+)", timeout=120).group(1)
        up.wait_for(re.escape(up.url), timeout=120)
        headers = {"Authorization": f"Bearer {token}"}

        # `up` paused, Postgres killed: `status` says it is gone and what will happen or what to run.
        postgres_pid = recorded_server_pid(home, "postgres")
        os.kill(up.process.pid, signal.SIGSTOP)
        try:
            os.kill(postgres_pid, signal.SIGKILL)
            wait_until(lambda: "postgres: pid" in (out := docqueue_status(tmp_path).stdout) and "gone" in out, 30)
            status = docqueue_status(tmp_path).stdout
            assert f"postgres: pid {postgres_pid}, gone" in status, status
            assert "run `docqueue down` and then `docqueue up`" in status, status
        finally:
            os.kill(up.process.pid, signal.SIGCONT)
        up.wait_for(rf"embedded Postgres \(pid {postgres_pid}\) has died; starting it again", timeout=30)
        new_pid = int(up.wait_for(r"embedded Postgres is running again \(pid (\d+)\)", timeout=120).group(1))
        assert new_pid != postgres_pid and recorded_server_pid(home, "postgres") == new_pid

        def answers():
            response = requests.get(f"{up.url}api/documents", headers=headers, timeout=10)
            return response.status_code == 200

        wait_until(answers, timeout=60, message="the API to answer again after Postgres came back")
        status = docqueue_status(tmp_path)
        assert status.returncode == 0 and f"postgres: pid {new_pid}, running" in status.stdout, status.stdout

        redis_pid = recorded_server_pid(home, "redis")
        os.kill(redis_pid, signal.SIGKILL)
        up.wait_for(rf"embedded Redis \(pid {redis_pid}\) has died; starting it again", timeout=30)
        up.wait_for(r"embedded Redis is running again \(pid \d+\)", timeout=120)

        # The whole service works again: an upload is processed to the end.
        document_id = upload(up.url, token, CORPUS / "pdf" / "pdflatex-4-pages.pdf")

        def completed():
            document = requests.get(f"{up.url}api/documents/{document_id}", headers=headers, timeout=10).json()
            assert document["status"] not in ("failed", "dead"), document
            return document["status"] == "completed"

        wait_until(completed, timeout=180, interval=0.5, message="the PDF to be processed after both restarts")
        clock_lines = [line for line in up.lines if re.search(r"\bclock\.\d+\s*\|", line)]
        assert not [line for line in clock_lines if "Traceback" in line], up.output()
        assert up.interrupt() == 0, up.output()
        assert started_processes(tmp_path) == [], up.output()
    finally:
        up.kill()
