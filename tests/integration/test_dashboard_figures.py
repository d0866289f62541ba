"""The dashboard's figures and warnings against real Postgres and Redis."""

from __future__ import annotations

import re

import dramatiq
import sqlalchemy as sa

from docqueue.dispatch.dispatcher import process_document_queue
from docqueue.dispatch.messages import held_messages
from docqueue.pipeline import STAGE_NAMES
from docqueue.queue import DocumentQueueService
from docqueue.queue.dashboard import read_dashboard
from tests.support.accounts import PASSWORD, log_in
from tests.support.factories import add_document
from tests.support.queue import admit, claim, failed_job, only_job_id


def drop_message(broker, job_id: int) -> None:
    """Remove the job's message from its queue's hash, as a Redis flush or failover would."""
    key = f"{broker.namespace}:documents.msgs"
    for message_id, data in broker.client.hgetall(key).items():
        if dramatiq.Message.decode(data).args[0] == job_id:
            broker.client.hdel(key, message_id)
            return
    raise AssertionError(f"no message of job {job_id} in {key}")


def lost_warnings(session) -> list[str]:
    return [
        warning
        for warning in read_dashboard(session, STAGE_NAMES, None, held_messages).warnings
        if "no message" in warning
    ]


def test_a_queued_job_whose_message_redis_lost_is_warned_about_while_others_run(session, make_user, broker):
    owner, _ = make_user(concurrent_ocr_jobs=4)
    jobs = [only_job_id(session, add_document(session, owner)) for _ in range(4)]
    assert process_document_queue(session).sent == 4
    running, lost, waiting = jobs[:2], jobs[2], jobs[3]
    for job_id in running:
        claim(session, job_id)  # a worker holds its message unacknowledged while the stage runs
    session.execute(sa.text("UPDATE document_queue SET dispatched_at = now() - interval '1 minute'"))
    session.commit()
    assert lost_warnings(session) == []

    drop_message(broker, lost)
    # Redis still holds three messages for two queued jobs: only matching each job to its message finds the loss.
    assert broker.client.hlen(f"{broker.namespace}:documents.msgs") == 3
    assert [(job_id, "inspect") in held_messages() for job_id in (lost, waiting)] == [False, True]
    assert lost_warnings(session) == [
        "1 queued job with no message in Redis (Postgres and Redis drifted); the dispatcher re-sends them after 15 s"
    ]


def test_the_whole_queue_reading_counts_each_status_once_under_the_cap(session, make_user):
    owner, _ = make_user(concurrent_ocr_jobs=4)
    done, *_ = [only_job_id(session, add_document(session, owner)) for _ in range(3)]
    admit(session)
    DocumentQueueService(session).mark_completed(claim(session, done))
    session.execute(
        sa.text("UPDATE document_queue SET created_at = now() - interval '10 minutes' WHERE id <> :d"), {"d": done}
    )
    session.commit()
    statements = []

    def record(connection, cursor, statement, *args):
        statements.append(statement)

    sa.event.listen(session.get_bind(), "before_cursor_execute", record)
    try:
        dashboard = read_dashboard(session, STAGE_NAMES)
    finally:
        sa.event.remove(session.get_bind(), "before_cursor_execute", record)
    # Each status is counted once, by a capped count (`count(*) FROM (... LIMIT cap)`); nothing counts uncapped.
    assert [s for s in statements if re.search(r"count\(\*\) FROM document_queue", s)] == []
    assert dashboard.as_stats()["queued"] == 2 and dashboard.completed_today == 1
    assert 9.9 < dashboard.oldest_pending_minutes < 11 and dashboard.avg_wait_minutes >= 0


def test_metrics_carry_each_stages_duration_and_attempts_once_a_stage_has_ended(client, make_user, session):
    owner, _ = make_user(concurrent_ocr_jobs=4)
    _, token = make_user(role="operator")
    done = only_job_id(session, add_document(session, owner))
    admit(session)
    DocumentQueueService(session).mark_completed(claim(session, done))
    failed_job(session, owner)
    metrics = client.get("/metrics", headers={"Authorization": f"Bearer {token}"}).get_data(as_text=True)
    assert re.search(r'^docqueue_stage_duration_seconds_avg\{stage="inspect"\} \d', metrics, re.MULTILINE)
    assert 'docqueue_stage_attempts{outcome="ok",stage="inspect"} 1.0' in metrics
    assert 'docqueue_stage_attempts{outcome="failed",stage="inspect"} 1.0' in metrics


def test_the_backlog_eta_follows_the_completions_per_minute(no_csrf_app, make_user, session):
    owner, _ = make_user("eta@example.com", password=PASSWORD, role="operator")
    for _ in range(4):
        add_document(session, owner)
    assert (
        read_dashboard(session, STAGE_NAMES).backlog_eta_minutes is None
    )  # nothing completed lately: no rate to go by
    # 30 completions over the last 15 minutes, as the completion trigger counts them: 2 a minute.
    session.execute(
        sa.text(
            "INSERT INTO queue_minute_stats (minute, slot, completed) "
            "VALUES (date_trunc('minute', now()) - interval '3 minutes', 0, 20), "
            "(date_trunc('minute', now()) - interval '1 minute', 1, 10), "
            "(date_trunc('minute', now()) - interval '20 minutes', 0, 600)"  # older than the window: not counted
        )
    )
    session.commit()
    dashboard = read_dashboard(session, STAGE_NAMES)
    assert (dashboard.completed_per_minute, dashboard.backlog_eta_minutes) == (2.0, 2.0)
    client = no_csrf_app.test_client()
    log_in(client, "eta@example.com")
    page = client.get("/admin").get_data(as_text=True)
    assert '<dt>Backlog clears in</dt><dd data-stat="backlog_eta">~2.0 min</dd>' in page
