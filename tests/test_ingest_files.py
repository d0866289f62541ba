"""How `docqueue ingest` treats the operating system's limits: open files, threads reading at once, memory."""

from __future__ import annotations

import os
import resource

import sqlalchemy as sa

from tests.test_ingest import run_cli

LARGE = 70 * 1024  # over reading.INLINE_BYTES: read again, from disk, when stored


def limit(kind: int, soft: int):
    """A preexec_fn lowering one resource limit of the child process."""

    def apply() -> None:
        resource.setrlimit(kind, (soft, resource.getrlimit(kind)[1]))

    return apply


def test_a_batch_of_large_files_keeps_few_files_open(tmp_path, session, make_user):
    make_user("fds@example.com")
    root = tmp_path / "large"
    root.mkdir()
    for n in range(300):
        (root / f"f{n:03d}.pdf").write_bytes(b"%PDF-1.4\n" + os.urandom(LARGE))
    # 300 files in one batch, far more than the 128 descriptors the process may hold.
    result = run_cli(
        root,
        "--user",
        "fds@example.com",
        "--batch-size",
        "300",
        cwd=tmp_path,
        env={**os.environ, "MAX_CONCURRENT_IO": "8"},
        preexec_fn=limit(resource.RLIMIT_NOFILE, 128),
    )
    assert "added 300 documents" in result.stdout and "0 rejected" in result.stdout, result.stdout
    stored = session.execute(sa.text("SELECT count(*) FROM documents WHERE size_bytes > :n"), {"n": LARGE}).scalar()
    assert stored == 300
