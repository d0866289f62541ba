"""Fixtures of the system tier: a real headless Chromium and a page of it; private Postgres and Redis to break;
a transaction-mode PgBouncer in front of the test database."""

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from tests.support.browser import CHROMIUM_ARGS
from tests.support.pooler import PgBouncer
from tests.support.private_servers import PrivatePostgres, PrivateRedis


@pytest.fixture
def browser(request):
    # A test's Procfile processes are set up before its browser, so they are stopped after it has closed:
    # otherwise gunicorn waits out the browser's keep-alive connections (WEB_HEADER_TIMEOUT_SECONDS, 10 s)
    # before it exits.
    if "procfile" in request.fixturenames:
        request.getfixturevalue("procfile")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    """A page that fails the test on any Content-Security-Policy violation."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    violations = []
    page.on(
        "console",
        lambda message: violations.append(message.text) if "Content Security Policy" in message.text else None,
    )
    yield page
    context.close()
    assert violations == []


@pytest.fixture
def private_redis(tmp_path, monkeypatch):
    """A private Redis the test may kill and restart; this test process's broker uses it too."""
    from docqueue.broker import build_broker
    from docqueue.settings import get_settings

    server = PrivateRedis(tmp_path).start()
    monkeypatch.setenv("REDIS_URL", server.url)
    get_settings.cache_clear()
    build_broker()
    yield server
    server.kill()
    monkeypatch.undo()
    get_settings.cache_clear()


@pytest.fixture
def private_postgres(monkeypatch, test_env):
    """A private, migrated Postgres the test may stop and start; this test process uses it too."""
    from docqueue.local.scratch import migrate
    from docqueue.settings import get_settings

    # Not under pytest's tmp_path: other pytest runs on the machine prune old base temp dirs.
    directory = Path(tempfile.mkdtemp(prefix="docqueue-chaos-postgres-"))
    server = PrivatePostgres(directory).init()
    monkeypatch.setenv("DATABASE_URL", server.url)
    get_settings.cache_clear()
    migrate({**os.environ})
    yield server
    from docqueue.db import get_engine

    get_engine().dispose()
    server.stop("immediate")
    shutil.rmtree(directory, ignore_errors=True)
    monkeypatch.undo()
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def pgbouncer(test_env):
    """A transaction-mode PgBouncer in front of the test database's server (`tests/support/pooler.py`)."""
    bouncer = PgBouncer(test_env["DATABASE_URL"]).start()
    yield bouncer
    bouncer.stop()


@pytest.fixture
def pooled_env(test_env, pgbouncer) -> dict:
    """What a Procfile process behind the pooler gets: DATABASE_URL through it, the direct URL for LISTEN."""
    return {
        "DATABASE_URL": pgbouncer.url_for(test_env["DATABASE_URL"]),
        "DATABASE_POOLER": "transaction",
        "DATABASE_DIRECT_URL": test_env["DATABASE_URL"],
    }
