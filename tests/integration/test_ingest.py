"""`docqueue ingest` as an operator runs it: a real CLI process against real Postgres."""

from __future__ import annotations

import csv
import hashlib
import os
import signal
import subprocess
from pathlib import Path

import pymupdf
import pytest
import sqlalchemy as sa

from docqueue.dispatch.dispatcher import process_document_queue
from tests.support.factories import add_document, make_pdf
from tests.support.ingest import DOCQUEUE, many_files, run_cli, scalar
from tests.support.processes import wait_until


def make_png(seed: int) -> bytes:
    pixmap = pymupdf.Pixmap(pymupdf.csRGB, pymupdf.IRect(0, 0, 4, 4), False)
    pixmap.set_pixel(0, 0, (seed % 256, 0, 0))
    return pixmap.tobytes("png")


@pytest.fixture
def tree(tmp_path) -> Path:
    """A folder as people have them: nested, with links, junk, an empty file and copies."""
    root = tmp_path / "archive"
    (root / "2024" / "scans").mkdir(parents=True)
    (root / "notes").mkdir()
    report = make_pdf(["report"])
    (root / "2024" / "report.pdf").write_bytes(report)
    (root / "2024" / "scans" / "page.png").write_bytes(make_png(1))
    (root / "2024" / "scans" / "copy-of-report.pdf").write_bytes(report)  # same bytes
    (root / "notes" / "todo.txt").write_text("buy milk\n")  # unsupported
    (root / "notes" / "empty.pdf").write_bytes(b"")
    (root / "notes" / "minutes.pdf").write_bytes(make_pdf(["minutes"]))
    (root / "notes" / "draft.tmp").write_bytes(make_pdf(["draft"]))  # excluded by the glob below
    (root / "notes" / "\xad").write_bytes(make_pdf(["a soft hyphen"]))  # a name with nothing visible in it
    outside = tmp_path / "secret.pdf"
    outside.write_bytes(make_pdf(["secret"]))
    (root / "notes" / "link-out.pdf").symlink_to(outside)
    (root / "link-in.pdf").symlink_to(root / "2024" / "report.pdf")
    return root


def test_ingest_takes_supported_files_once_and_says_why_it_left_the_rest(tree, tmp_path, session, make_user, broker):
    owner, _ = make_user("importer@example.com")
    result = run_cli(tree, "--user", "importer@example.com", "--exclude", "*.tmp", cwd=tmp_path)

    assert "added 3 documents" in result.stdout
    assert "1 already there, 5 rejected, 1 filtered out" in result.stdout
    names = session.execute(
        sa.text("SELECT filename FROM documents WHERE owner_id = :o ORDER BY filename"), {"o": owner}
    )
    assert [n for (n,) in names] == ["minutes.pdf", "page.png", "report.pdf"]
    assert scalar(session, "SELECT count(*) FROM documents WHERE filename = 'secret.pdf'") == 0

    run = session.execute(sa.text("SELECT * FROM ingest_runs")).one()
    assert (run.status, run.files_seen, run.files_added, run.duplicates, run.rejected) == ("completed", 9, 3, 1, 5)
    assert run.finished_at >= run.started_at
    reasons = dict(session.execute(sa.text("SELECT path, reason FROM ingest_rejections ORDER BY seq")).all())
    assert reasons[str(tree / "notes" / "todo.txt")].startswith("unsupported file type")
    assert reasons[str(tree / "notes" / "empty.pdf")] == "the file is empty"
    assert reasons[str(tree / "notes") + "/"] == "the file's name has no visible characters"
    assert "outside the ingested paths: not followed" in reasons[str(tree / "notes" / "link-out.pdf")]
    assert "symbolic link: not followed" in reasons[str(tree / "link-in.pdf")]

    # The CSV goes under DOCQUEUE_HOME (here ./.docqueue), never loose in the working folder.
    csv_path = Path(result.stdout.split("rejected files: ")[1].strip())
    home = Path(os.environ.get("DOCQUEUE_HOME") or tmp_path / ".docqueue").resolve()
    assert csv_path.parent == home / "ingest"
    assert list(tmp_path.glob("ingest-*.csv")) == []
    with open(csv_path, newline="") as rows:
        assert {row["path"]: row["reason"] for row in csv.DictReader(rows)} == reasons

    # Each queue row is what an upload's enqueue makes, in the bulk lane (both admitted by now).
    other, _ = make_user()
    uploaded = add_document(session, other, (tree / "2024" / "report.pdf").read_bytes(), filename="report.pdf")
    process_document_queue(session)
    columns = ", ".join(
        f"q.{column}"
        for column in (
            "status",
            "stage",
            "priority",
            "attempts",
            "max_attempts",
            "file_size",
            "operation",
            "failure_kind",
            "error_message",
            "dispatched_at IS NOT NULL AS dispatched",
            "started_at",
            "lease_token",
            "lane",
        )
    )
    query = (
        f"SELECT {columns}, d.status AS document_status FROM document_queue q JOIN documents d ON d.id = q.document_id"
    )
    by_upload = session.execute(sa.text(f"{query} WHERE d.id = :d"), {"d": uploaded}).one()
    by_ingest = session.execute(
        sa.text(f"{query} WHERE d.owner_id = :o AND d.filename = 'report.pdf'"), {"o": owner}
    ).one()
    assert {**by_ingest._asdict(), "lane": None} == {**by_upload._asdict(), "lane": None}
    assert (by_upload.lane, by_ingest.lane) == ("interactive", "bulk")
    ingested = session.execute(
        sa.text(
            "SELECT d.status, d.content_type, d.sha256, d.size_bytes FROM documents d WHERE owner_id = :o AND filename = 'page.png'"
        ),
        {"o": owner},
    ).one()
    png = (tree / "2024" / "scans" / "page.png").read_bytes()
    assert tuple(ingested) == ("pending", "image/png", hashlib.sha256(png).hexdigest(), len(png))
    stored = session.execute(
        sa.text(
            "SELECT string_agg(data, ''::bytea ORDER BY seq) FROM blob_chunks WHERE blob_key LIKE 'documents/%' "
            "AND blob_key = 'documents/' || (SELECT id FROM documents WHERE filename = 'page.png') || '/original'"
        )
    ).scalar()
    assert bytes(stored) == png

    # A second run adds nothing: everything is already there.
    again = run_cli(tree, "--user", "importer@example.com", "--exclude", "*.tmp", cwd=tmp_path)
    assert "added 0 documents" in again.stdout and "4 already there" in again.stdout
    assert scalar(session, "SELECT count(*) FROM documents WHERE owner_id = :o", o=owner) == 3
    assert scalar(session, "SELECT count(*) FROM ingest_runs") == 2


def test_dry_run_stores_nothing(tree, tmp_path, session, make_user):
    make_user("dry@example.com")
    result = run_cli(tree, "--user", "dry@example.com", "--dry-run", "--include", "*.pdf", cwd=tmp_path)
    assert "dry run completed: would add 2 documents" in result.stdout
    assert scalar(session, "SELECT count(*) FROM documents") == 0
    assert scalar(session, "SELECT count(*) FROM ingest_runs") == 0


def test_unknown_user_is_one_line_of_error(tree, tmp_path, test_env):
    result = run_cli(tree, "--user", "nobody@example.com", cwd=tmp_path, check=False)
    assert result.returncode != 0
    assert "no user with email nobody@example.com" in result.stderr


#: Files of the interrupted run: two folders, and far more than the ~100 added before the signal lands.
RESUMED_FILES = 1000


@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGINT, signal.SIGTERM], ids=lambda stop: stop.name)
def test_an_interrupted_run_resumes_without_duplicates(stop, tmp_path, session, make_user, test_env):
    owner, _ = make_user("resume@example.com")
    root = many_files(tmp_path / "bulk", RESUMED_FILES)
    process = subprocess.Popen(
        [DOCQUEUE, "ingest", str(root), "--user", "resume@example.com", "--batch-size", "50"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_until(
        lambda: (scalar(session, "SELECT files_added FROM ingest_runs") or 0) >= 100 or process.poll() is not None,
        timeout=120,
        interval=0.05,
        message="some batches to commit",
    )
    process.send_signal(stop)
    out, err = process.communicate(timeout=60)
    first = scalar(session, "SELECT count(*) FROM documents WHERE owner_id = :o", o=owner)
    assert 0 < first < RESUMED_FILES, "the kill must land mid-run for this test to mean anything"
    run = session.execute(sa.text("SELECT status, files_added FROM ingest_runs")).one()
    assert run.files_added == first, "the run record counts exactly what committed"
    if stop != signal.SIGKILL:  # Ctrl-C, or a `kill` (SIGTERM) as a PaaS or an operator sends it
        assert process.returncode == 1
        assert run.status == "interrupted", err
        assert f"added {first:,} documents" in out and "run the same command again" in out
    else:
        assert run.status == "running"  # killed outright: it never got to say so

    result = run_cli(root, "--user", "resume@example.com", "--batch-size", "500", cwd=tmp_path)
    assert f"added {RESUMED_FILES - first:,} documents" in result.stdout
    assert f"{first:,} already there" in result.stdout
    counts = session.execute(
        sa.text("SELECT count(*), count(DISTINCT sha256) FROM documents WHERE owner_id = :o"), {"o": owner}
    ).one()
    assert tuple(counts) == (RESUMED_FILES, RESUMED_FILES)
    assert scalar(session, "SELECT count(*) FROM document_queue WHERE owner_id = :o", o=owner) == RESUMED_FILES
    assert scalar(session, "SELECT count(DISTINCT blob_key) FROM blob_chunks") == RESUMED_FILES


def test_statements_per_batch_do_not_grow_with_the_batch(tmp_path, session, make_user, monkeypatch):
    import psycopg

    from docqueue.db import get_engine
    from docqueue.ingest.batch import store_batch
    from docqueue.ingest.reading import read_files
    from docqueue.ingest.runs import start_run
    from docqueue.ingest.walk import walk_paths

    owner, _ = make_user()
    statements: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    # COPY goes to the driver directly, under SQLAlchemy's events: count it where it is sent.
    send_copy = psycopg.Cursor.copy

    def counted_copy(cursor, statement, *args, **kwargs):
        statements.append(statement)
        return send_copy(cursor, statement, *args, **kwargs)

    monkeypatch.setattr(psycopg.Cursor, "copy", counted_copy)

    def store(count_of_files: int, name: str) -> int:
        walked = walk_paths([many_files(tmp_path / name, count_of_files)])
        files = list(read_files(walked.candidates, 8))
        run_id = start_run(session, owner, "cli", [name])
        statements.clear()
        sa.event.listen(get_engine(), "before_cursor_execute", count)
        try:
            result = store_batch(session, owner, files, [], run_id=run_id)
        finally:
            sa.event.remove(get_engine(), "before_cursor_execute", count)
        assert result.added == count_of_files
        return len(statements)

    few, many = store(10, "few"), store(1000, "many")
    assert many == few, statements
    # lock, dedupe, storage quota, ids, COPY bytes, COPY documents, queue rows, storage use, run record
    assert many == 9, statements
    assert sum(statement.startswith("COPY") for statement in statements) == 2


def test_large_files_are_streamed_in_chunks_and_priority_follows_size_or_the_option(tmp_path, session, make_user):
    make_user("big@example.com")
    big = tmp_path / "big"
    big.mkdir()
    data = b"%PDF-1.4\n" + os.urandom(3 * 1024 * 1024)
    (big / "scan.pdf").write_bytes(data)
    run_cli(big, "--user", "big@example.com", cwd=tmp_path)
    row = session.execute(
        sa.text(
            "SELECT d.id, d.size_bytes, d.sha256, q.priority FROM documents d JOIN document_queue q ON q.document_id = d.id"
        )
    ).one()
    assert (row.size_bytes, row.sha256, row.priority) == (len(data), hashlib.sha256(data).hexdigest(), 8)
    chunks = session.execute(
        sa.text("SELECT length(data) FROM blob_chunks WHERE blob_key = :k ORDER BY seq"),
        {"k": f"documents/{row.id}/original"},
    ).scalars()
    assert list(chunks) == [1024 * 1024] * 3 + [9]

    small = tmp_path / "small"
    small.mkdir()
    (small / "memo.pdf").write_bytes(make_pdf(["memo"]))
    run_cli(small, "--user", "big@example.com", "--priority", "55", "--batch-size", "1", cwd=tmp_path)
    assert (
        scalar(
            session,
            "SELECT priority FROM document_queue q JOIN documents d ON d.id = q.document_id "
            "WHERE d.filename = 'memo.pdf'",
        )
        == 55
    )
    refused = run_cli(small, "--user", "big@example.com", "--priority", "500", cwd=tmp_path, check=False)
    assert refused.returncode == 2 and "500 is not in the range 0<=x<=100" in refused.stderr
