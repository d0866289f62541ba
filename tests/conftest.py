"""Test fixtures: real Postgres, real Redis, real processes.

Servers come from DATABASE_URL / REDIS_URL when set, else embedded ones are
started. Each run creates its own database and Redis namespace and removes
only those at the end.

Tiers are folders: `tests/unit` (no servers), `tests/integration` (Postgres
and Redis used in this process), `tests/system` (processes, a browser,
`docqueue up`). Each test is marked with its folder's tier, and any test
that starts processes through a fixture is marked `system` wherever it
lives, so `pytest -m "not system"` never starts a Procfile process.
"""

from __future__ import annotations

import os
import secrets
import signal
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from tests.support.processes import CORPUS, ManagedProcess, delete_namespace

RUN_ID = f"{os.getpid()}_{secrets.token_hex(4)}"

TIERS = ("unit", "integration", "system")
#: Fixtures that start real processes or a browser: a test using one is a system test.
PROCESS_FIXTURES = {"procfile", "browser", "page", "admin_browser", "private_postgres", "private_redis"}


def pytest_collection_modifyitems(config, items):
    """Mark each test with its folder's tier, and `system` where it starts processes."""
    for item in items:
        tier = item.path.parent.name
        if tier not in TIERS:
            raise pytest.UsageError(f"{item.nodeid}: tests live in tests/unit, tests/integration or tests/system")
        item.add_marker(tier)
        if tier != "system" and PROCESS_FIXTURES & set(item.fixturenames):
            item.add_marker("system")


def _server_urls(tmp_root: Path) -> tuple[str, str, object]:
    database_url = os.environ.get("DATABASE_URL")
    redis_url = os.environ.get("REDIS_URL")
    embedded = None
    if not (database_url and redis_url):
        from docqueue.local.embedded import start_embedded_servers

        embedded = start_embedded_servers(tmp_root / "embedded", database="postgres")
        database_url = database_url or embedded.database_url
        redis_url = redis_url or embedded.redis_url
    return database_url, redis_url, embedded


@pytest.fixture(scope="session")
def test_env(tmp_path_factory) -> dict:
    """Environment for this run: its own database and Redis namespace, migrated by the real release command."""
    from docqueue.local.scratch import migrate, scratch_database
    from docqueue.settings import get_settings

    server_url, redis_url, embedded = _server_urls(tmp_path_factory.mktemp("servers"))
    namespace = f"docqueue-test-{RUN_ID}"
    with scratch_database(server_url, "docqueue_test") as database_url:
        env = {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "REDIS_NAMESPACE": namespace,
            "SECRET_KEY": secrets.token_hex(16),
            # Short heartbeats and ticks so crash recovery happens within a test's patience.
            "HEARTBEAT_INTERVAL_SECONDS": "1",
            "HEARTBEAT_TIMEOUT_SECONDS": "6",
            "DISPATCH_INTERVAL_SECONDS": "1",
            "REDISPATCH_AFTER_SECONDS": "10",
            "RETRY_BACKOFF_SECONDS": "1",
            "PDF_WORKER_PROCESSES": "2",
            # The tests' callback receivers listen on loopback, which callbacks may not reach unless allowed.
            "CALLBACK_ALLOWED_HOSTS": "127.0.0.1",
            # The suite's slow files (tests/support/factories.py) stand for files slow in ways `inspect` cannot measure, to
            # reach the time limits (0: no operator limit, no content stream read at inspect); the tests of the
            # content limits set them (tests/test_content_limits.py).
            "MAX_CONTENT_OPERATORS": "0",
        }
        os.environ.update(env)
        get_settings.cache_clear()
        migrate({**os.environ})
        yield env
        from docqueue.db import get_engine

        get_engine().dispose()
        delete_namespace(redis_url, namespace)
    if embedded is not None:
        embedded.stop()


@pytest.fixture(autouse=True)
def clean_state(request):
    """Empty tables and this run's Redis keys before each test that touches them."""
    if "test_env" not in request.fixturenames:
        yield
        return
    env = request.getfixturevalue("test_env")
    from docqueue.db import get_engine
    from tests.support.database import empty_tables

    empty_tables(get_engine())
    delete_namespace(env["REDIS_URL"], env["REDIS_NAMESPACE"])
    yield


@pytest.fixture
def session(test_env):
    from docqueue.db import session_scope

    with session_scope() as session:
        yield session


@pytest.fixture
def broker(test_env):
    from docqueue.broker import build_broker

    return build_broker()


class SettledClient(FlaskClient):
    """Flask's test client, answering once the request's dispatcher run has finished.

    The web admits an upload's job after its answer, in the background
    (`web/dispatch_waker.py`); a test that goes on to run stages here must
    not race that run for the job, so each request returns after it.
    """

    def open(self, *args, **kwargs):
        response = super().open(*args, **kwargs)
        assert self.application.extensions["dispatch_waker"].wait_idle(timeout=30)
        return response


@pytest.fixture
def app(test_env, broker):
    from web import create_app

    app = create_app({"TESTING": True})
    app.test_client_class = SettledClient
    yield app
    # Its uploads' dispatcher runs must not reach into the next test's tables.
    assert app.extensions["dispatch_waker"].wait_idle(timeout=30)
    # Each app has its own pool: close it, or every test's idle connections stay open until garbage
    # collection, and a whole run holds Postgres's max_connections (seen: 90 of 100, then "too many clients").
    from web.extensions import db

    with app.app_context():
        for engine in db.engines.values():
            engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def make_user(test_env):
    """Create a user; returns (user id, API token)."""
    from docqueue.accounts.users import create_user
    from docqueue.db import session_scope

    def make(email: str | None = None, *, password: str | None = None, role: str = "viewer", **settings):
        with session_scope() as session:
            user, token = create_user(session, email or f"user{secrets.token_hex(3)}@example.com", password, role=role)
            for name, value in settings.items():
                setattr(user, name, value)
            return user.id, token

    return make


@pytest.fixture
def procfile(test_env, tmp_path):
    """Start Procfile processes by name; everything started is stopped after the test."""
    started: list[ManagedProcess] = []

    def start(name: str, **extra_env) -> ManagedProcess:
        process = ManagedProcess(name, test_env, tmp_path, {k: str(v) for k, v in extra_env.items()}).start()
        started.append(process)
        return process

    yield start
    # All at once: each takes seconds to shut down gracefully, and none waits for another.
    for process in started:
        process.signal_group(signal.SIGTERM)
    for process in started:
        process.wait_stopped()


@pytest.fixture
def corpus_truth() -> dict:
    import json

    return json.loads((CORPUS / "truth.json").read_text())


@pytest.fixture
def engine(test_env):
    """The test database's engine, to read what other processes wrote outside any test session."""
    from docqueue.db import get_engine

    return get_engine()


@pytest.fixture
def owner(make_user):
    """A fresh user's id, for tests that need a document owner and nothing more of the user."""
    return make_user()[0]


@pytest.fixture
def no_csrf_app(app):
    """The app without CSRF checks, so a test posts forms without fetching a token first."""
    app.config.update(WTF_CSRF_ENABLED=False)
    return app
