"""The admission rule with the real Procfile worker, clock and web, behind a real `docqueue ingest` backlog."""

from __future__ import annotations

import subprocess

import sqlalchemy as sa

from tests.support.api import Api
from tests.support.ingest import DOCQUEUE, many_files
from tests.support.processes import start_web, wait_until

BACKLOG = 1000


def test_uploads_jump_an_import_and_a_lone_importer_gets_every_slot(procfile, make_user, test_env, tmp_path):
    from docqueue.db import get_engine

    engine = get_engine()

    def query(sql: str, **params):
        with engine.connect() as connection:
            return connection.execute(sa.text(sql), params).scalar()

    importer, importer_token = make_user("importer@example.com")
    _, bystander_token = make_user("bystander@example.com")
    root = many_files(tmp_path / "import", BACKLOG)
    subprocess.run(
        [DOCQUEUE, "ingest", str(root), "--user", "importer@example.com"],
        cwd=tmp_path,
        check=True,
        capture_output=True,
        timeout=300,
    )
    assert query("SELECT count(*) FROM document_queue WHERE lane = 'bulk' AND status = 'pending'") > BACKLOG - 10

    base_url = start_web(procfile)
    procfile("worker")
    procfile("clock")
    # Nobody else has work: the importer may use all OCR_CONCURRENT_JOBS (4), not just its own 2.
    in_flight = "SELECT count(*) FROM document_queue WHERE owner_id = :o AND status IN ('queued', 'processing')"
    wait_until(lambda: query(in_flight, o=importer) == 4, timeout=120, interval=0.02, message="4 imports in flight")

    own = Api(base_url, importer_token).upload("own.pdf", (root / "d000" / "f000000.pdf").read_bytes() + b"%own\n")
    other = Api(base_url, bystander_token).upload("other.pdf", (root / "d000" / "f000001.pdf").read_bytes() + b"%o\n")
    started = "SELECT started_at FROM document_queue WHERE document_id = :d"
    for document_id in (own, other):
        wait_until(lambda d=document_id: query(started, d=d), timeout=120, message=f"upload {document_id} to start")
        # It started while the import it was uploaded behind had hardly moved.
        not_started_before = query(
            "SELECT count(*) FROM document_queue WHERE lane = 'bulk' "
            "AND (started_at IS NULL OR started_at > (SELECT started_at FROM document_queue WHERE document_id = :d))",
            d=document_id,
        )
        assert not_started_before > BACKLOG // 2, (
            f"upload {document_id} waited for {BACKLOG - not_started_before} imports"
        )


def test_monitor_follows_the_import_until_it_is_processed(procfile, make_user, test_env, tmp_path):
    from docqueue.db import get_engine

    owner, _ = make_user("watcher@example.com")
    root = many_files(tmp_path / "small", 30)
    procfile("worker")
    procfile("clock")
    result = subprocess.run(
        [DOCQUEUE, "ingest", str(root), "--user", "watcher@example.com", "--monitor"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "added 30 documents" in result.stdout
    assert "the import is processed: 30 documents completed, 0 failed" in result.stdout
    assert "docs/s" in result.stderr and "ETA" in result.stderr
    with get_engine().connect() as connection:
        statuses = connection.execute(
            sa.text("SELECT status, count(*) FROM documents WHERE owner_id = :o GROUP BY status"), {"o": owner}
        ).all()
    assert dict(statuses) == {"completed": 30}
