"""Faults the queue must ride out, with the real web, worker and clock processes, Postgres and Redis.

Messages flushed from Redis are found missing and sent again; a worker
frozen (SIGSTOP) inside a transaction neither keeps its row lock for ever
nor stalls the clock's recovery.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import sqlalchemy as sa

from tests.conftest import _delete_namespace, free_port, wait_for_web, wait_until
from tests.factories import make_pdf
from tests.test_e2e_procfile import Api, create_admin_with_cli

#: The shipped defaults, not the quick ones the other tests run with: the issue's bound is for these.
DEFAULT_TIMING = {"DISPATCH_INTERVAL_SECONDS": 5, "REDISPATCH_AFTER_SECONDS": 120, "LOST_MESSAGE_AFTER_SECONDS": 15}


def start_web_with(procfile, **env) -> str:
    port = free_port()
    procfile("web", PORT=port, WEB_CONCURRENCY=1, **env)
    base_url = f"http://127.0.0.1:{port}"
    wait_for_web(base_url)
    return base_url


def scalar(engine, sql: str, **params):
    with engine.connect() as connection:
        return connection.execute(sa.text(sql), params).scalar()


def test_messages_flushed_from_redis_are_resent_within_a_minute(procfile, test_env, broker):
    from docqueue.db import get_engine

    engine = get_engine()
    procfile("clock", **DEFAULT_TIMING)
    api = Api(start_web_with(procfile, **DEFAULT_TIMING), create_admin_with_cli(test_env))
    uploaded = [api.upload(f"doc-{n}.pdf", make_pdf([f"document {n}", "second page"])) for n in range(4)]
    # No worker yet: the admitted jobs' messages wait in Redis.
    queued = wait_until(
        lambda: scalar(engine, "SELECT count(*) FROM document_queue WHERE status = 'queued'"), 30, message="admission"
    )
    messages_key = f"{test_env['REDIS_NAMESPACE']}:documents.msgs"
    assert broker.client.hlen(messages_key) == queued

    _delete_namespace(test_env["REDIS_URL"], test_env["REDIS_NAMESPACE"])  # Redis lost everything it held
    flushed_at = time.monotonic()
    assert broker.client.hlen(messages_key) == 0
    procfile("worker", **DEFAULT_TIMING)

    # Before: nothing moved until REDISPATCH_AFTER_SECONDS (120 s). The bound is the wait.
    documents = wait_until(lambda: api.all_finished(uploaded), timeout=60, message="flushed work to complete")
    print(f"all {len(uploaded)} documents completed {time.monotonic() - flushed_at:.1f} s after the flush")
    assert all(documents[n]["status"] == "completed" for n in uploaded), documents
    jobs = scalar(engine, "SELECT count(*) FROM document_queue WHERE status = 'completed'")
    assert jobs == len(uploaded), "one job per document, each completed once"


def _idle_in_transaction_with_queue_lock(engine) -> tuple | None:
    """(backend pid, transaction start) of a docqueue session idle inside a transaction holding a queue row lock."""
    with engine.connect() as connection:
        return connection.execute(
            sa.text(
                """
                SELECT a.pid, a.xact_start FROM pg_stat_activity a JOIN pg_locks l ON l.pid = a.pid
                WHERE a.datname = current_database() AND a.pid <> pg_backend_pid()
                  AND a.state = 'idle in transaction' AND l.relation = 'document_queue'::regclass
                LIMIT 1
                """
            )
        ).first()


def freeze_inside_a_transaction(worker, engine) -> tuple:
    """SIGSTOP the worker's process group at a moment one of its sessions holds a queue row lock mid-transaction."""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        holder = _idle_in_transaction_with_queue_lock(engine)
        if holder is None:
            continue
        worker.signal_group(signal.SIGSTOP)
        time.sleep(0.3)
        if _idle_in_transaction_with_queue_lock(engine) == holder:
            return tuple(holder)
        worker.signal_group(signal.SIGCONT)  # that transaction ended before the stop landed: try again
    raise AssertionError("never caught the worker inside a transaction")


def test_a_worker_frozen_inside_a_transaction_does_not_stall_recovery(procfile, test_env):
    from docqueue.db import get_engine

    engine = get_engine()
    quick_idle_timeout = {"DB_IDLE_IN_TRANSACTION_TIMEOUT_SECONDS": 3}
    frozen = procfile("worker", **quick_idle_timeout)
    procfile("clock", **quick_idle_timeout)
    api = Api(start_web_with(procfile, **quick_idle_timeout), create_admin_with_cli(test_env))
    # Thousands of pages, written 50 to a transaction that locks the job's row: many moments to freeze in.
    big = api.upload("big.pdf", make_pdf([f"page {n}" for n in range(6000)]))
    try:
        backend, _ = freeze_inside_a_transaction(frozen, engine)
        print(f"worker frozen; its session {backend} holds a row lock mid-transaction")
        procfile("worker", **quick_idle_timeout)
        small = api.upload("small.pdf", make_pdf(["uploaded while a worker is frozen"]))
        # Before: the frozen session kept its lock for ever, and recovery never took the big job back.
        documents = wait_until(lambda: api.all_finished([big, small]), timeout=180, message="both documents")
        assert documents[small]["status"] == "completed"
        assert documents[big]["status"] == "completed", documents[big]
        assert documents[big]["page_count"] == 6000
        assert scalar(engine, "SELECT count(*) FROM pg_stat_activity WHERE pid = :p", p=backend) == 0, (
            "Postgres ended the frozen session (idle_in_transaction_session_timeout)"
        )
        state = Path(f"/proc/{frozen.process.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        assert state == "T", "the frozen worker stayed stopped throughout"
    finally:
        frozen.signal_group(signal.SIGCONT)


def test_every_connection_has_lock_and_idle_transaction_timeouts(app, test_env):
    from docqueue.db import get_engine
    from web.extensions import db

    with app.app_context():
        engines = {"worker and clock": get_engine(), "web": db.engine}
        for name, engine in engines.items():
            with engine.connect() as connection:
                assert connection.execute(sa.text("SHOW lock_timeout")).scalar() == "10s", name
                assert connection.execute(sa.text("SHOW idle_in_transaction_session_timeout")).scalar() == "1min", name
