"""Bulk ingest helpers: the docqueue command, trees of many files, logging in for folder uploads."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from tests.support.factories import make_pdf

DOCQUEUE = str(Path(sys.executable).parent / "docqueue")


def run_cli(*args, cwd: Path, check: bool = True, **popen) -> subprocess.CompletedProcess:
    """`docqueue ingest ARGS` in `cwd`; `popen` goes to subprocess.run (env, preexec_fn)."""
    result = subprocess.run(
        [DOCQUEUE, "ingest", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        **popen,
    )
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def scalar(session, sql: str, **params):
    return session.execute(sa.text(sql), params).scalar()


def many_files(root: Path, count: int) -> Path:
    """`count` distinct small PDFs: one template with a different comment line each."""
    template = make_pdf(["bulk"])
    root.mkdir()
    for n in range(count):
        folder = root / f"d{n // 500:03d}"
        folder.mkdir(exist_ok=True)
        (folder / f"f{n:06d}.pdf").write_bytes(template + f"\n% {n}\n".encode())
    return root


def logged_in(app, make_user, email: str, **user):
    make_user(email, password="pw", **user)
    app.config.update(WTF_CSRF_ENABLED=False)
    client = app.test_client()
    assert client.post("/login", data={"email": email, "password": "pw"}).status_code == 302
    return client


def upload_folder(client, files: dict[str, bytes]):
    data = {"folder": [(io.BytesIO(content), name) for name, content in files.items()]}
    return client.post("/upload/folder", data=data, content_type="multipart/form-data", follow_redirects=True)
