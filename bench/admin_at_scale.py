"""How the admin pages answer with a million jobs in the table.

Fills a scratch database with ROWS queue items (most completed over the last
two weeks, 2% failed with a handful of distinct errors, a pending tail, a few
in flight, across 1,000 users) and the per-minute counters the completion
trigger would have kept, then requests each page through the real Flask app
(routing, login session, SQL, templates) as an operator and prints the p50
and p95 of RUNS requests. The dashboard is timed with its shared snapshot
switched off (every request reads the database, the worst case) and on.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/0 \\
        python bench/admin_at_scale.py [ROWS] [RUNS]
"""

from __future__ import annotations

import os
import sys
import time

import sqlalchemy as sa

from docqueue.local.scratch import migrate, scratch_database
from docqueue.settings import get_settings

FILL = """
INSERT INTO users (email, password_hash, api_token_hash, concurrent_ocr_jobs)
SELECT 'user' || u || '@bench', 'x', md5(u::text) || md5((u + 1)::text), 2 FROM generate_series(1, 1000) u;

INSERT INTO documents (owner_id, filename, content_type, size_bytes, sha256, status)
SELECT 1 + n % 1000, 'doc' || n || '.pdf', 'application/pdf', 10000 + n % 5000000, md5(n::text),
       CASE WHEN n <= :completed THEN (CASE WHEN n % 50 = 0 THEN 'failed' ELSE 'completed' END) ELSE 'pending' END
FROM generate_series(1, :rows) n;

-- Spread over two weeks up to now; every 50th finished job failed with one of five errors.
INSERT INTO document_queue (document_id, owner_id, operation, status, stage, priority, attempts, max_attempts,
                            file_size, created_at, started_at, completed_at, run_after, error_message)
SELECT d.id, d.owner_id, 'process', d.status,
       CASE WHEN d.status = 'pending' THEN 'inspect' ELSE 'extract_text' END,
       (ARRAY[2, 4, 6, 8, 10])[1 + d.id % 5], CASE WHEN d.status = 'pending' THEN 0 ELSE 1 END, 3, d.size_bytes,
       now() - make_interval(secs => (:rows - d.id) * 1209600.0 / :rows),
       CASE WHEN d.status <> 'pending' THEN now() - make_interval(secs => (:rows - d.id) * 1209600.0 / :rows - 2) END,
       CASE WHEN d.status <> 'pending' THEN now() - make_interval(secs => (:rows - d.id) * 1209600.0 / :rows - 3) END,
       now(),
       CASE WHEN d.status = 'failed' THEN 'extract_text failed: ' ||
           (ARRAY['OSError: disk full', 'ValueError: bad xref', 'RuntimeError: code=2',
                  'TimeoutError: slow', 'KeyError: font'])[1 + d.id % 5] END
FROM documents d;

-- What the completion trigger would have counted, had these rows completed one by one.
INSERT INTO queue_daily_stats (day, slot, completed, wait_seconds)
SELECT completed_at::date, id % 16, count(*), sum(extract(epoch FROM started_at - created_at))
FROM document_queue WHERE status = 'completed' GROUP BY 1, 2;
INSERT INTO queue_minute_stats (minute, slot, completed, wait_seconds, processing_ms)
SELECT date_trunc('minute', completed_at), id % 16, count(*), sum(extract(epoch FROM started_at - created_at)), 0
FROM document_queue WHERE status = 'completed' GROUP BY 1, 2;

INSERT INTO users (email, password_hash, api_token_hash, role)
VALUES ('operator@bench', :password_hash, :token_hash, 'operator');
"""

API_TOKEN = "operator-bench-token"

PAGES = {
    "dashboard, snapshot off": "/admin",
    "dashboard, shared snapshot": "/admin",
    "dashboard poll (htmx figures)": "/admin",
    "jobs: newest page": "/admin/jobs",
    "jobs: status=failed": "/admin/jobs?status=failed",
    "jobs: user + failed": "/admin/jobs?status=failed&user=user7@bench",
    "jobs: deep page (before=mid)": "/admin/jobs?before={middle}",
    "jobs: error text (scan)": "/admin/jobs?error=bad%20xref",
    "failures grouped": "/admin/failures",
    "job detail": "/admin/jobs/{middle}",
    "/api/queue/stats": "/api/queue/stats",
}


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    with scratch_database(os.environ["DATABASE_URL"], "docqueue_bench") as database_url:
        env = {**os.environ, "DATABASE_URL": database_url, "SECRET_KEY": "bench", "REDIS_NAMESPACE": "docqueue-bench"}
        migrate(env)
        os.environ.update(env)
        get_settings.cache_clear()
        from werkzeug.security import generate_password_hash

        from docqueue.accounts.users import hash_token
        from docqueue.queue.dashboard import SnapshotCache
        from web import create_app

        engine = sa.create_engine(get_settings().database_url)
        started = time.perf_counter()
        with engine.begin() as connection:
            for statement in FILL.split(";\n"):
                if statement.strip():
                    connection.execute(
                        sa.text(statement),
                        {
                            "rows": rows,
                            "completed": rows - rows // 100,
                            "password_hash": generate_password_hash("b"),
                            "token_hash": hash_token(API_TOKEN),
                        },
                    )
        fill_seconds = time.perf_counter() - started
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(sa.text("VACUUM ANALYZE"))
            middle = connection.execute(sa.text("SELECT max(id) / 2 FROM document_queue")).scalar()
        engine.dispose()

        app = create_app({"TESTING": True, "WTF_CSRF_ENABLED": False, "RATELIMIT_ENABLED": False})
        client = app.test_client()
        assert client.post("/login", data={"email": "operator@bench", "password": "b"}).status_code == 302
        token_headers = {"Authorization": f"Bearer {API_TOKEN}"}
        results = {}
        for name, path in PAGES.items():
            app.extensions["dashboard_snapshot"] = SnapshotCache(max_age=0 if "off" in name else 2.0)
            headers = {"HX-Request": "true"} if "htmx" in name else {}
            if path.startswith("/api"):
                headers = token_headers
            url = path.format(middle=middle)
            client.get(url, headers=headers)  # warm the caches this page uses
            samples = []
            for _ in range(runs):
                begun = time.perf_counter()
                response = client.get(url, headers=headers)
                samples.append((time.perf_counter() - begun) * 1000)
                assert response.status_code == 200, (url, response.status_code)
            results[name] = samples

    print(
        f"rows: {rows:,} queue items ({rows // 100:,} pending, {rows // 50:,} failed), filled in {fill_seconds:.0f} s;"
        f" {runs} requests each through the Flask app, logged in as an operator"
    )
    print(f"{'page':34} {'p50 ms':>8} {'p95 ms':>8}")
    for name, samples in results.items():
        print(f"{name:34} {percentile(samples, 0.5):8.1f} {percentile(samples, 0.95):8.1f}")


if __name__ == "__main__":
    main()
