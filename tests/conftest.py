"""Test fixtures: real Postgres, real Redis, real processes.

Servers come from DATABASE_URL / REDIS_URL when set, else embedded ones are
started. Each run creates its own database and Redis namespace and removes
only those at the end.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
import requests
from flask.testing import FlaskClient

from docqueue.procfile import REPO_ROOT as REPO
from docqueue.procfile import procfile_commands, with_local_scripts

CORPUS = REPO.parent / "shared" / "corpus"
RUN_ID = f"{os.getpid()}_{secrets.token_hex(4)}"


def _server_urls(tmp_root: Path) -> tuple[str, str, object]:
    database_url = os.environ.get("DATABASE_URL")
    redis_url = os.environ.get("REDIS_URL")
    embedded = None
    if not (database_url and redis_url):
        from docqueue.embedded import start_embedded_servers

        embedded = start_embedded_servers(tmp_root / "embedded", database="postgres")
        database_url = database_url or embedded.database_url
        redis_url = redis_url or embedded.redis_url
    return database_url, redis_url, embedded


@pytest.fixture(scope="session")
def test_env(tmp_path_factory) -> dict:
    """Environment for this run: its own database and Redis namespace, migrated by the real release command."""
    from docqueue.scratch import migrate, scratch_database
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
            # The suite's slow files (tests/factories.py) stand for files slow in ways `inspect` cannot measure, to
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
        _delete_namespace(redis_url, namespace)
    if embedded is not None:
        embedded.stop()


def _delete_namespace(redis_url: str, namespace: str) -> None:
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{namespace}*", count=1000))
    if keys:
        client.delete(*keys)


@pytest.fixture(autouse=True)
def clean_state(request):
    """Empty tables and this run's Redis keys before each test that touches them."""
    if "test_env" not in request.fixturenames:
        yield
        return
    env = request.getfixturevalue("test_env")
    from docqueue.db import get_engine
    from docqueue.scratch import empty_all_tables

    empty_all_tables(get_engine())
    _delete_namespace(env["REDIS_URL"], env["REDIS_NAMESPACE"])
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


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def make_user(test_env):
    """Create a user; returns (user id, API token)."""
    from docqueue.db import session_scope
    from docqueue.users import create_user

    def make(email: str | None = None, *, password: str | None = None, role: str = "viewer", **settings):
        with session_scope() as session:
            user, token = create_user(session, email or f"user{secrets.token_hex(3)}@example.com", password, role=role)
            for name, value in settings.items():
                setattr(user, name, value)
            return user.id, token

    return make


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ManagedProcess:
    """A Procfile process started with bash, as a PaaS would, in its own process group."""

    def __init__(self, name: str, env: dict, log_dir: Path, extra_env: dict | None = None) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}-{time.monotonic_ns()}.log"
        self.env = with_local_scripts({**os.environ, **env, **(extra_env or {})})
        self.process: subprocess.Popen | None = None

    def start(self) -> ManagedProcess:
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            ["bash", "-c", f"exec {procfile_commands()[self.name]}"],
            cwd=REPO,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def signal_group(self, signum: int) -> None:
        """Signal every process of the group, as a PaaS does on shutdown."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signum)

    def stop(self, timeout: float = 30) -> int | None:
        """SIGTERM the whole group and wait; SIGKILL what is left."""
        if self.process is None:
            return None
        self.signal_group(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.signal_group(signal.SIGKILL)
            return self.process.wait(timeout=10)

    def kill(self) -> None:
        """SIGKILL the whole group: a crash, with no chance to clean up."""
        self.signal_group(signal.SIGKILL)
        self.process.wait(timeout=10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture
def procfile(test_env, tmp_path):
    """Start Procfile processes by name; everything started is stopped after the test."""
    started: list[ManagedProcess] = []

    def start(name: str, **extra_env) -> ManagedProcess:
        process = ManagedProcess(name, test_env, tmp_path, {k: str(v) for k, v in extra_env.items()}).start()
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


def wait_until(predicate, timeout: float, interval: float = 0.2, message: str | Callable[[], str] = "condition"):
    """Poll `predicate` until it returns something truthy; fail the test after `timeout` seconds.

    `message` may be a function, called on failure to describe the state then.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout} s waiting for {message() if callable(message) else message}")


def wait_for_web(base_url: str) -> None:
    """Block until the web process at `base_url` answers /healthz."""

    def healthy():
        try:
            return requests.get(f"{base_url}/healthz", timeout=5).status_code == 200
        except requests.RequestException:  # not listening yet, or still booting its workers
            return False

    wait_until(healthy, timeout=60, message="web to answer /healthz")


def start_web(procfile, port: int | None = None, processes: int = 2, **env) -> str:
    """Start the Procfile's web process (with `env` added); return its base URL once it answers."""
    port = port or free_port()
    procfile("web", PORT=port, WEB_CONCURRENCY=processes, **env)
    base_url = f"http://127.0.0.1:{port}"
    wait_for_web(base_url)
    return base_url


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
