"""The connections a running stack opens, counted in `pg_stat_activity`, against the README's budget formula.

Each process's connections carry `application_name` docqueue-<role>; the
budget (README, "Connection budget"):

    web     WEB_CONCURRENCY × DB_WEB_CONNECTIONS
    worker  WORKER_PROCESSES × DB_WORKER_CONNECTIONS
    pdf     WORKER_PROCESSES × PDF_WORKER_PROCESSES × DB_PDF_PROCESS_CONNECTIONS
    clock   DB_CLOCK_CONNECTIONS + 1 (its LISTEN connection)
    ingest  DB_INGEST_CONNECTIONS per running `docqueue ingest`
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import sqlalchemy as sa

from tests.support.api import Api, create_admin_with_cli
from tests.support.processes import CORPUS, REPO, free_port, wait_for_web, wait_until

# The Procfile's sizing for this stack, and the budget settings at their defaults.
SIZING = {"WEB_CONCURRENCY": 2, "WORKER_PROCESSES": 1, "WORKER_THREADS": 4, "PDF_WORKER_PROCESSES": 2}
DEFAULTS = {"web": 5, "worker": SIZING["WORKER_THREADS"] + 2, "pdf": 2, "clock": 2, "ingest": 3}


def budget() -> dict[str, int]:
    """The README's formula, by role, for SIZING and the default DB_*_CONNECTIONS."""
    return {
        "docqueue-web": SIZING["WEB_CONCURRENCY"] * DEFAULTS["web"],
        "docqueue-worker": SIZING["WORKER_PROCESSES"] * DEFAULTS["worker"],
        "docqueue-pdf": SIZING["WORKER_PROCESSES"] * SIZING["PDF_WORKER_PROCESSES"] * DEFAULTS["pdf"],
        "docqueue-clock": DEFAULTS["clock"] + 1,
        "docqueue-ingest": DEFAULTS["ingest"],
    }


class ConnectionCounter:
    """Samples this database's connections by application name in a thread; keeps the most seen of each.

    Every connection counts but this test process's own (matched by its client port): a stack's process that
    connected without a budgeted role would show as `docqueue-command`, or without a name.
    """

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.most: dict[str, int] = {}
        self.most_in_total = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with self.engine.connect() as connection:
            while not self.stop.is_set():
                rows = connection.execute(
                    sa.text(
                        "SELECT application_name, client_port FROM pg_stat_activity"
                        " WHERE datname = current_database() AND backend_type = 'client backend'"
                    )
                ).all()
                connection.rollback()
                own = {c.laddr.port for c in psutil.Process().net_connections("tcp")}
                counts = Counter(name for name, port in rows if port not in own)
                for name, count in counts.items():
                    self.most[name] = max(self.most.get(name, 0), count)
                self.most_in_total = max(self.most_in_total, sum(counts.values()))
                self.stop.wait(0.1)

    def __enter__(self) -> ConnectionCounter:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(timeout=10)


def finished(engine: sa.Engine, expected: int) -> dict[str, int] | None:
    """Documents by status once `expected` of them exist and none is still pending or processing."""
    with engine.connect() as connection:
        statuses = dict(connection.execute(sa.text("SELECT status, count(*) FROM documents GROUP BY 1")).all())
    return statuses if sum(statuses.values()) == expected and set(statuses) <= {"completed", "failed"} else None


def test_a_running_stack_opens_no_more_connections_than_the_readme_budget(procfile, test_env, engine):
    procfile("worker", **SIZING)
    clock = procfile("clock")
    port = free_port()
    procfile("web", PORT=port, **SIZING)
    base_url = f"http://127.0.0.1:{port}"
    wait_for_web(base_url)
    api = Api(base_url, create_admin_with_cli(test_env))
    names = sorted(path.name for path in (CORPUS / "pdf").glob("*.pdf"))
    docqueue = str(Path(sys.executable).parent / "docqueue")
    subprocess.run([docqueue, "user", "create", "importer@example.com"], cwd=REPO, capture_output=True, check=True)

    with ConnectionCounter(engine) as counter:
        # An import and a burst of concurrent uploads (more requests at once than the web has connections).
        ingest = subprocess.Popen(
            [docqueue, "ingest", str(CORPUS / "pdf"), "--user", "importer@example.com"],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        with ThreadPoolExecutor(16) as uploads:
            uploaded = list(uploads.map(lambda name: api.upload(name, (CORPUS / "pdf" / name).read_bytes()), names))
        assert ingest.wait(timeout=300) == 0, ingest.stdout.read()
        statuses = wait_until(lambda: finished(engine, 2 * len(names)), timeout=300, message="every file to finish")
    assert statuses == {"completed": 2 * len(names)}, "each corpus file uploaded and imported, and processed"
    assert len(uploaded) == len(names)

    print(f"most connections seen: {counter.most} (in total {counter.most_in_total}); budget {budget()}")
    assert set(counter.most) == set(budget()), "every process seen, and each connected with its budgeted role"
    for name, most in counter.most.items():
        assert most <= budget()[name], (name, most, budget()[name])
    assert counter.most_in_total <= sum(budget().values())
    assert "LISTEN on DATABASE_URL" in clock.log()


def test_a_request_that_finds_the_web_budget_busy_answers_503_and_retry_after(test_env, make_user, monkeypatch):
    from docqueue.settings import get_settings
    from web import create_app
    from web.extensions import db

    _, token = make_user()
    monkeypatch.setenv("DB_WEB_CONNECTIONS", "1")
    monkeypatch.setenv("DB_POOL_TIMEOUT_SECONDS", "1")
    get_settings.cache_clear()
    try:
        app = create_app({"TESTING": True})
        with app.app_context(), db.engine.connect() as busy:
            busy.execute(sa.text("SELECT 1"))  # the web process's only connection, in use
            response = app.test_client().get("/api/documents", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 503, response.text
        assert response.json == {"error": "the database is unavailable for a moment: try again shortly"}
        assert response.headers["Retry-After"] == "5"
        with app.app_context():
            db.engine.dispose()
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
