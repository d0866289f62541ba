"""The operator dashboard's reading against a real Postgres: counts, estimates, charts, live workers, its cache."""

from __future__ import annotations

import time

import sqlalchemy as sa

from docqueue.pipeline import STAGE_NAMES
from docqueue.queue.dashboard import SnapshotCache, read_dashboard
from docqueue.queue.heartbeats import beat
from docqueue.queue.history import completion_series
from tests.support.factories import add_document
from tests.support.queue import failed_job


def test_dashboard_counts_estimates_and_charts(session, make_user, monkeypatch):
    owner, _ = make_user()
    failed_job(session, owner)
    add_document(session, owner)
    dashboard = read_dashboard(session, STAGE_NAMES)
    stats = dashboard.as_stats()
    assert (stats["pending"], stats["failed"], stats["estimated"]) == (1, 1, [])
    assert dashboard.stages["inspect"]["pending"] == 1
    # Past the exact-count limit a count is the planner's estimate, and says so.
    monkeypatch.setattr("docqueue.queue.dashboard.EXACT_COUNT_LIMIT", 0)
    estimated = read_dashboard(session, STAGE_NAMES)
    assert estimated.statuses["failed"].estimated and estimated.as_stats()["estimated"]
    series = completion_series(session, 1)
    assert len(series.times) in (60, 61) and sum(series.completed) == 0


def test_the_snapshot_is_shared_until_it_is_too_old():
    reads = []
    cache = SnapshotCache(max_age=60)

    def read():
        reads.append(1)
        return type("Reading", (), {"taken_at": time.time()})()

    first = cache.get(read)
    assert cache.get(read) is first and len(reads) == 1


def test_the_dashboard_lists_live_workers_and_warns_when_beats_stop(session, make_user):
    from docqueue.queue.heartbeats import forget_worker

    owner, _ = make_user()
    add_document(session, owner)
    assert any("no worker is alive" in warning for warning in read_dashboard(session, STAGE_NAMES).warnings)
    beat(session, "host:1:live", [101, 102])  # running two jobs (ids of no queue item: nothing to renew)
    beat(session, "host:2:frozen", [103])
    session.execute(
        sa.text("UPDATE worker_heartbeats SET last_seen_at = now() - interval '2 minutes' WHERE running = 1")
    )
    session.commit()
    dashboard = read_dashboard(session, STAGE_NAMES)
    assert [(w.worker_id, w.running) for w in dashboard.workers] == [("host:1:live", 2), ("host:2:frozen", 1)]
    assert [w for w in dashboard.warnings if "host:2:frozen" in w and "stuck or has stopped" in w]
    assert not any("no worker is alive" in warning for warning in dashboard.warnings)
    forget_worker(session, "host:1:live")
    session.commit()
    assert any("no worker is alive" in warning for warning in read_dashboard(session, STAGE_NAMES).warnings)
