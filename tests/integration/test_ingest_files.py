"""How `docqueue ingest` treats the operating system's limits: open files, threads reading at once, memory."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import resource
import threading

import sqlalchemy as sa

from docqueue.ingest.reading import FILES_PER_TASK, read_files
from docqueue.ingest.walk import Candidate, Rejection, walk_paths
from tests.support.factories import make_pdf
from tests.support.ingest import run_cli
from tests.support.processes import wait_until

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


def test_reading_never_has_more_than_max_concurrent_files_open(tmp_path):
    """Each file is a FIFO: its reader blocks until the test opens the other end, so the test sees every
    file being read at that moment, and lets one finish (an empty file) only when it has counted."""
    workers = 4
    paths = [tmp_path / f"f{n:03d}.pdf" for n in range(8 * FILES_PER_TASK)]
    for path in paths:
        os.mkfifo(path)
    results: list = []
    reader = threading.Thread(
        target=lambda: results.extend(read_files([Candidate(str(p), p.name, 0) for p in paths], workers))
    )
    reader.start()
    held: dict[int, int] = {}  # index of a file being read -> the test's end of its FIFO
    done = peak = 0

    def being_read() -> int:
        for index in range(done, len(paths)):
            if index in held:
                continue
            try:
                held[index] = os.open(paths[index], os.O_WRONLY | os.O_NONBLOCK)
            except OSError as error:
                assert error.errno == errno.ENXIO  # nobody reading it yet
        assert len(held) <= workers, sorted(held)
        return len(held)

    try:
        while done < len(paths):
            tasks_left = len(range(done // FILES_PER_TASK * FILES_PER_TASK, len(paths), FILES_PER_TASK))
            wait_until(lambda: being_read() >= min(workers, tasks_left), timeout=60, interval=0.01)
            peak = max(peak, len(held))
            # The first in walk order: results come back in order, so later tasks wait for it.
            first = min(held)
            os.close(held.pop(first))
            done = first + 1 if first == done else done
    finally:
        for fd in held.values():
            os.close(fd)
        while reader.is_alive():  # after a failure: let every reader still waiting finish
            for path in paths:
                with contextlib.suppress(OSError):
                    os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
            reader.join(timeout=0.1)
    assert peak == workers
    assert [result.reason for result in results] == ["the file is empty"] * len(paths)


def test_a_file_larger_than_the_memory_the_process_may_use_is_streamed(tmp_path, session, make_user):
    make_user("stream@example.com")
    root = tmp_path / "huge"
    root.mkdir()
    size = 200 * 1024 * 1024  # MAX_UPLOAD_MB's default
    with open(root / "scan.pdf", "wb") as target:
        target.write(b"%PDF-1.4\n" + os.urandom(4096))
        target.truncate(size)  # the rest sparse: no disk, but every byte read and stored
    digest = hashlib.sha256()
    with open(root / "scan.pdf", "rb") as source:
        while chunk := source.read(1024 * 1024):
            digest.update(chunk)
    # The whole address space is the file's size: holding the file once would not fit beside Python.
    result = run_cli(
        root,
        "--user",
        "stream@example.com",
        cwd=tmp_path,
        env={**os.environ, "MALLOC_ARENA_MAX": "2"},  # one arena per thread would reserve 64 MiB each
        preexec_fn=limit(resource.RLIMIT_AS, size),
    )
    assert "added 1 documents" in result.stdout, result.stdout
    document_id, stored_sha = session.execute(sa.text("SELECT id, sha256 FROM documents")).one()
    assert stored_sha == digest.hexdigest()
    stored = hashlib.sha256()
    chunks = session.execute(
        sa.text("SELECT data FROM blob_chunks WHERE blob_key = :k ORDER BY seq"),
        {"k": f"documents/{document_id}/original"},
        execution_options={"yield_per": 8},
    )
    for (data,) in chunks:
        stored.update(data)
    assert stored.hexdigest() == digest.hexdigest()


def test_a_file_swapped_for_a_symbolic_link_after_the_walk_is_refused(tmp_path):
    root = tmp_path / "walked"
    root.mkdir()
    secret = tmp_path / "secret.pdf"
    secret.write_bytes(make_pdf(["secret"]))
    (root / "report.pdf").write_bytes(make_pdf(["report"]))
    walked = walk_paths([str(root)])
    assert [c.display for c in walked.candidates] == [str(root / "report.pdf")]
    (root / "report.pdf").unlink()
    (root / "report.pdf").symlink_to(secret)
    [result] = read_files(walked.candidates, 1)
    assert isinstance(result, Rejection), result
    assert result.reason == "symbolic link (since the walk): not followed"
