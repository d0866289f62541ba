"""How the queue's statements cost with a million jobs in the table.

Fills a scratch database with ROWS queue items (most completed, a tail
pending, some in flight, across 1,000 users), then times each hot statement
of the queue service: the median of RUNS runs, each rolled back so every run
sees the same table. The baseline is one bare `SELECT 1` round trip in the
same run, so the ratios say how many round trips' worth each statement costs.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres python bench/queue_at_scale.py [ROWS] [RUNS]

With EXPLAIN=1 it also prints the admission statement's EXPLAIN ANALYZE.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from dataclasses import replace

import sqlalchemy as sa
from sqlalchemy.orm import Session

from docqueue.local.scratch import migrate, scratch_database
from docqueue.settings import get_settings

FILL = """
INSERT INTO users (email, password_hash, api_token_hash, concurrent_ocr_jobs)
SELECT 'user' || u || '@bench', 'x', md5(u::text) || md5((u + 1)::text), 2 FROM generate_series(1, 1000) u;

INSERT INTO documents (owner_id, filename, content_type, size_bytes, sha256, status)
SELECT 1 + n % 1000, 'doc' || n || '.pdf', 'application/pdf', 10000 + n % 5000000, md5(n::text),
       CASE WHEN n <= :completed THEN 'completed' ELSE 'pending' END
FROM generate_series(1, :rows) n;

INSERT INTO document_queue (document_id, owner_id, operation, status, stage, priority, attempts, max_attempts,
                            file_size, created_at, started_at, completed_at, run_after, lane)
SELECT d.id, d.owner_id, 'process',
       CASE WHEN d.id <= :completed THEN 'completed' ELSE 'pending' END,
       CASE WHEN d.id <= :completed THEN 'extract_text' ELSE 'inspect' END,
       (ARRAY[2, 4, 6, 8, 10])[1 + d.id % 5], CASE WHEN d.id <= :completed THEN 1 ELSE 0 END, 3,
       d.size_bytes, now() - make_interval(secs => (:rows - d.id) * 0.05),
       CASE WHEN d.id <= :completed THEN now() - make_interval(secs => (:rows - d.id) * 0.05) + interval '2 seconds' END,
       CASE WHEN d.id <= :completed THEN now() - make_interval(secs => (:rows - d.id) * 0.05) + interval '3 seconds' END,
       now(),
       -- A tenth of the users are importing: their items wait in the bulk lane.
       CASE WHEN d.owner_id % 10 = 0 THEN 'bulk' ELSE 'interactive' END
FROM documents d;

-- What the completion trigger would have counted, had these rows completed one by one.
INSERT INTO queue_daily_stats (day, slot, completed, wait_seconds)
SELECT completed_at::date, id % 16, count(*), sum(extract(epoch FROM started_at - created_at))
FROM document_queue WHERE status = 'completed' GROUP BY 1, 2;
"""


# The admission statement before queue lanes (main at 3a50158), timed in the same run as a baseline.
ADMIT_BEFORE_LANES = """
WITH in_flight AS (
    SELECT owner_id, count(*) AS n FROM document_queue
    WHERE status IN ('queued', 'processing') GROUP BY owner_id
), candidates AS (
    SELECT pick.id, pick.priority, pick.created_at
    FROM users u
    LEFT JOIN in_flight f ON f.owner_id = u.id
    CROSS JOIN LATERAL (
        SELECT q.id, q.priority, q.created_at FROM document_queue q
        WHERE q.owner_id = u.id AND q.status = 'pending' AND q.run_after <= now()
        ORDER BY q.priority DESC, q.created_at, q.id
        LIMIT GREATEST(u.concurrent_ocr_jobs - COALESCE(f.n, 0), 0)
    ) pick
), admitted AS (
    SELECT id FROM candidates
    ORDER BY priority DESC, created_at, id
    LIMIT LEAST(:batch, GREATEST(:capacity - (SELECT COALESCE(sum(n), 0) FROM in_flight), 0))
)
UPDATE document_queue q SET status = 'queued', dispatched_at = now()
FROM admitted WHERE q.id = admitted.id AND q.status = 'pending'
RETURNING q.id, q.stage
"""


def timed(session: Session, action, runs: int) -> float:
    """Median milliseconds of `action(session)`, each run rolled back."""
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        action(session)
        samples.append((time.perf_counter() - start) * 1000)
        session.rollback()
    return statistics.median(samples)


def explain_admission(session: Session) -> str:
    """EXPLAIN ANALYZE of the admission statement, as the dispatcher runs it (rolled back)."""
    from docqueue.queue import service

    captured = []
    original = service.DocumentQueueService._execute

    def capture(self, sql, **params):
        captured.append((sql, params))
        return original(self, sql, **params)

    service.DocumentQueueService._execute = capture
    try:
        service.DocumentQueueService(session).admit_pending()
    finally:
        service.DocumentQueueService._execute = original
    session.rollback()
    sql, params = captured[-1]
    rows = session.execute(sa.text("EXPLAIN (ANALYZE, BUFFERS) " + sql), params)
    session.rollback()
    return "\n".join(row[0] for row in rows)


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 7
    server_url = os.environ["DATABASE_URL"]
    with scratch_database(server_url, "docqueue_bench") as database_url:
        env = {**os.environ, "DATABASE_URL": database_url, "SECRET_KEY": "bench", "REDIS_URL": "redis://unused"}
        migrate(env)
        os.environ.update(env)
        get_settings.cache_clear()
        from docqueue.queue import DocumentQueueService
        from docqueue.queue.dashboard import read_dashboard

        engine = sa.create_engine(get_settings().database_url)
        started = time.perf_counter()
        with engine.begin() as connection:
            for statement in FILL.split(";\n"):
                if statement.strip():
                    connection.execute(sa.text(statement), {"rows": rows, "completed": rows - rows // 10})
        fill_seconds = time.perf_counter() - started
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(sa.text("VACUUM ANALYZE"))

        with Session(engine) as session:
            queue = DocumentQueueService(session)
            # Admission with every slot free: the most it has to choose.
            admission = timed(session, lambda s: DocumentQueueService(s).admit_pending(), runs)
            # Its old per-owner index is gone; an equal one for the old statement, dropped after.
            session.execute(
                sa.text(
                    "CREATE INDEX bench_old_admission_idx ON document_queue (owner_id, priority DESC, created_at, id) "
                    "WHERE status = 'pending'"
                )
            )
            session.commit()
            before_lanes = timed(
                session, lambda s: s.execute(sa.text(ADMIT_BEFORE_LANES), {"batch": 1000, "capacity": 4}).all(), runs
            )
            session.execute(sa.text("DROP INDEX bench_old_admission_idx"))
            session.commit()
            plan = explain_admission(session) if os.environ.get("EXPLAIN") else ""
            # A few jobs in flight, as in steady state.
            queue.admit_pending()
            session.commit()
            # As after a completion: the dispatcher runs with one slot to fill.
            one_more_slot = replace(get_settings(), ocr_concurrent_jobs=get_settings().ocr_concurrent_jobs + 1)
            queued_id = session.execute(
                sa.text("SELECT id FROM document_queue WHERE status = 'queued' LIMIT 1")
            ).scalar()

            results = {
                "SELECT 1 (baseline round trip)": timed(session, lambda s: s.execute(sa.text("SELECT 1")), runs),
                "read_dashboard (the stats API's figures)": timed(session, read_dashboard, runs),
                "admit_pending (all slots free)": admission,
                "  before lanes (main), all slots free": before_lanes,
                "admit_pending (one slot free)": timed(
                    session, lambda s: DocumentQueueService(s, one_more_slot).admit_pending(), runs
                ),
                "admit_pending (full)": timed(session, lambda s: DocumentQueueService(s).admit_pending(), runs),
                "claim (claim)": timed(
                    session, lambda s: DocumentQueueService(s).claim(queued_id, "inspect", "bench"), runs
                ),
                "recover_stale_jobs": timed(session, lambda s: DocumentQueueService(s).recover_stale_jobs(), runs),
                "redispatch_lost_messages": timed(
                    session, lambda s: DocumentQueueService(s).redispatch_lost_messages(), runs
                ),
                "get_pending_items(50)": timed(session, lambda s: DocumentQueueService(s).get_pending_items(50), runs),
            }
        engine.dispose()

    baseline = results["SELECT 1 (baseline round trip)"]
    print(f"rows: {rows:,} queue items ({rows // 10:,} pending), filled in {fill_seconds:.1f} s; median of {runs} runs")
    print(f"{'statement':40} {'ms':>9} {'x round trip':>13}")
    if plan:
        print("admit_pending plan:\n" + plan)
    for name, ms in results.items():
        print(f"{name:40} {ms:9.2f} {ms / baseline:13.1f}")


if __name__ == "__main__":
    main()
