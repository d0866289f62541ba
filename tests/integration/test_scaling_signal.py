"""The scaling signal: per lane, the backlog in documents and in estimated seconds of work, and the oldest wait.

What an autoscaler reads from `/metrics` (a KEDA Prometheus scaler) or
`/api/queue/stats` (a PaaS autoscaler's HTTP check).
"""

from __future__ import annotations

import io
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from docqueue.documents import create_document
from docqueue.pipeline import PIPELINE, STAGE_NAMES
from docqueue.queue import DocumentQueueService
from docqueue.queue.backlog import remaining_seconds
from docqueue.queue.history import StageTiming
from docqueue.statuses import QueueLane
from tests.support.factories import add_document, make_pdf
from tests.support.queue import admit, claim, only_job_id


def test_remaining_work_counts_the_current_stage_and_every_later_one():
    first, second, *rest = PIPELINE
    timings = [StageTiming(first.name, 10, 2.0, 0), StageTiming(second.name, 10, 5.0, 1)]
    remaining = remaining_seconds(timings, STAGE_NAMES)
    assert remaining[first.name] == 7.0
    assert remaining[second.name] == 5.0
    # Stages no attempt has timed yet count nothing: the figure is a floor until they have run.
    assert {remaining[stage.name] for stage in rest} == {0.0}


def _bulk_documents(session, owner_id: int, count: int) -> None:
    """Documents queued in the bulk lane, as `docqueue ingest` queues them."""
    ids = [
        create_document(session, owner_id, f"bulk-{n}.pdf", "application/pdf", io.BytesIO(make_pdf([f"bulk {n}"]))).id
        for n in range(count)
    ]
    DocumentQueueService(session).enqueue_many(ids, STAGE_NAMES, QueueLane.BULK)
    session.commit()


def _metrics(client, token: str) -> dict[tuple[str, str], float]:
    """(metric name, its lane or stage label) -> value, as Prometheus would read the page."""
    text = client.get("/metrics", headers={"Authorization": f"Bearer {token}"}).get_data(as_text=True)
    return {
        (sample.name, sample.labels.get("lane") or sample.labels.get("stage", "")): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_stats_and_metrics_give_each_lanes_backlog_and_oldest_wait(client, session, make_user):
    operator, token = make_user(role="operator", concurrent_ocr_jobs=10)
    viewer_token = make_user()[1]
    # One document runs its first stage for a second: the recent timing the seconds are estimated from.
    running = add_document(session, operator, filename="running.pdf")
    waiting = [add_document(session, operator, filename=f"upload-{n}.pdf") for n in range(3)]
    _bulk_documents(session, operator, 2)
    admit(session)
    started = claim(session, only_job_id(session, running), PIPELINE[0].name, "machine-a:1:test")
    time.sleep(1.0)
    DocumentQueueService(session).continue_with(started, PIPELINE[1].name, 20, "machine-a:1:test")
    session.commit()

    stats = client.get("/api/queue/stats", headers={"Authorization": f"Bearer {token}"}).get_json()
    interactive, bulk = stats["lanes"]["interactive"], stats["lanes"]["bulk"]
    assert (interactive["documents"], interactive["waiting"]) == (len(waiting) + 1, len(waiting))
    assert (bulk["documents"], bulk["waiting"]) == (2, 2)
    # The waiting ones were uploaded before that second of work.
    assert interactive["oldest_wait_seconds"] >= 1.0 and bulk["oldest_wait_seconds"] >= 1.0

    metrics = _metrics(client, token)
    first_stage_seconds = metrics[("docqueue_stage_duration_seconds_avg", PIPELINE[0].name)]
    assert first_stage_seconds >= 1.0
    # Waiting ones have the whole first stage ahead; the running one's later stages have no timing yet.
    assert interactive["seconds"] == pytest.approx(len(waiting) * first_stage_seconds, abs=0.1)
    assert bulk["seconds"] == pytest.approx(2 * first_stage_seconds, abs=0.1)
    assert metrics[("docqueue_backlog_documents", "interactive")] == len(waiting) + 1
    assert metrics[("docqueue_backlog_waiting_documents", "bulk")] == 2
    assert metrics[("docqueue_backlog_seconds", "bulk")] == pytest.approx(bulk["seconds"], abs=0.1)
    assert metrics[("docqueue_oldest_wait_seconds", "interactive")] >= 1.0

    # A viewer's stats are their own: none of the operator's work.
    mine = client.get("/api/queue/stats", headers={"Authorization": f"Bearer {viewer_token}"}).get_json()["lanes"]
    assert {lane: figures["documents"] for lane, figures in mine.items()} == {"interactive": 0, "bulk": 0}
