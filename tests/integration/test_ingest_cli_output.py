"""What `docqueue ingest` prints and leaves behind: --help only prints help, the rejected CSV goes where asked.

`up.json` here records live processes (this test's own) as the embedded
servers of an `up`, so every other command says it chose them: --help must not.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from docqueue.local.state import RecordedProcess, new_state, write_state

DOCQUEUE = Path(sys.executable).parent / "docqueue"


def run(*args: str, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([str(DOCQUEUE), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_ingest_help_does_not_announce_the_embedded_servers(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    state = new_state("http://127.0.0.1:1/")
    state.database_url, state.redis_url = "postgresql://nobody@127.0.0.1:1/none", "redis://127.0.0.1:1/0"
    state.servers = [RecordedProcess.of("postgres", os.getpid()), RecordedProcess.of("redis", os.getpid())]
    write_state(home, state)
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env["DOCQUEUE_HOME"] = str(home)
    helped = run("ingest", "--help", cwd=tmp_path, env=env)
    assert helped.returncode == 0 and "--rejected-csv" in helped.stdout
    assert "embedded servers" not in helped.stdout + helped.stderr
    # Any real use of a command does say which servers it chose (here they refuse, which is beside the point).
    used = run("ingest", str(tmp_path), "--user", "nobody@example.com", cwd=tmp_path, env=env)
    assert "using the embedded servers of `docqueue up`" in used.stderr


def test_the_rejected_csv_goes_where_rejected_csv_says(tmp_path, make_user, broker):
    make_user("importer@example.com")
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "notes.txt").write_text("not a document\n")
    target = tmp_path / "reports" / "refused.csv"
    target.parent.mkdir()
    result = run(
        "ingest",
        str(folder),
        "--user",
        "importer@example.com",
        "--rejected-csv",
        str(target),
        cwd=tmp_path,
        env=dict(os.environ),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"rejected files: {target}" in result.stdout
    assert "notes.txt" in target.read_text() and list(tmp_path.glob("ingest-*.csv")) == []
