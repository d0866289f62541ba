"""An ingest run's heartbeat: a run killed outright is marked `abandoned`; a slow live one is not."""

from __future__ import annotations

import subprocess
import threading

import sqlalchemy as sa

from docqueue.ingest.runs import mark_abandoned
from tests.support.ingest import DOCQUEUE, logged_in, many_files, scalar
from tests.support.processes import wait_until


def test_a_run_killed_outright_is_marked_abandoned_and_the_admin_page_says_so(
    tmp_path, app, session, make_user, test_env
):
    make_user("killed@example.com")
    root = many_files(tmp_path / "bulk", 3000)
    process = subprocess.Popen(
        [DOCQUEUE, "ingest", str(root), "--user", "killed@example.com", "--batch-size", "50"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_until(
        lambda: (scalar(session, "SELECT files_added FROM ingest_runs") or 0) >= 100 or process.poll() is not None,
        timeout=120,
        interval=0.05,
        message="some batches to commit",
    )
    process.kill()
    process.wait(timeout=60)
    added = scalar(session, "SELECT files_added FROM ingest_runs")
    assert 0 < added < 3000, "the kill must land mid-run for this test to mean anything"

    # What the clock runs each tick: nothing beats for this run any more, so after
    # HEARTBEAT_TIMEOUT_SECONDS it is abandoned.
    wait_until(lambda: mark_abandoned(session), timeout=60, interval=0.5, message="the run to be marked abandoned")
    run = session.execute(sa.text("SELECT status, files_added, finished_at, updated_at FROM ingest_runs")).one()
    assert (run.status, run.files_added, run.finished_at) == ("abandoned", added, run.updated_at)
    admin = logged_in(app, make_user, "watcher@example.com", role="admin")
    assert b'data-status="abandoned"' in admin.get("/admin/ingests/").data


def test_a_live_run_between_commits_longer_than_the_timeout_is_not_abandoned(tmp_path, session, make_user):
    from docqueue.db import session_scope
    from docqueue.ingest import IngestOptions, ingest_paths
    from docqueue.settings import get_settings

    owner, _ = make_user()
    root = many_files(tmp_path / "bulk", 3)
    held, release = threading.Event(), threading.Event()

    def hold_after_first_file(progress) -> None:
        # Stands for a long batch: reading stops here, between commits, until the test lets it go.
        if progress.files_read == 1:
            held.set()
            release.wait(120)

    def run() -> None:
        with session_scope() as own:
            ingest_paths(own, owner, [str(root)], IngestOptions.from_settings(), on_progress=hold_after_first_file)

    importer = threading.Thread(target=run)
    importer.start()
    try:
        wait_until(held.is_set, timeout=60, message="the run to start reading")
        timeout = get_settings().heartbeat_timeout_seconds
        wait_until(
            lambda: scalar(
                session,
                "SELECT clock_timestamp() - started_at > make_interval(secs => :t) FROM ingest_runs",
                t=timeout + 2,
            ),
            timeout=60,
            message="the run to outlive the heartbeat timeout",
        )
        assert mark_abandoned(session) == 0
        assert scalar(session, "SELECT status FROM ingest_runs") == "running"
    finally:
        release.set()
        importer.join(timeout=60)
    assert scalar(session, "SELECT status FROM ingest_runs") == "completed"
