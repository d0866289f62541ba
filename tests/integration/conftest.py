"""Fixtures of the integration tier: a real local HTTP server standing in for the AI services, and the settings that point the stages at it."""

from __future__ import annotations

import pytest

from docqueue.settings import get_settings
from tests.support.service_stub import ServiceStub, start_stub


@pytest.fixture
def stub():
    service = ServiceStub()
    url, server = start_stub(service)
    service.url = url
    yield service
    server.shutdown()


@pytest.fixture
def receiver(stub):
    """The same kind of server, standing in for a user's callback receiver."""
    return stub


@pytest.fixture
def ai_settings(monkeypatch, test_env):
    """Set environment settings for this test and make the process read them again."""

    def apply(**values):
        for name, value in values.items():
            monkeypatch.setenv(name, str(value))
        get_settings.cache_clear()

    yield apply
    monkeypatch.undo()
    get_settings.cache_clear()


@pytest.fixture(autouse=True)
def one_job_per_run_stage(monkeypatch):
    """`run_stage` here runs its message's job only: a test that queues many documents and runs one would
    otherwise go on with the others admission gives it (`worker/next_job.py`, tested on its own)."""
    monkeypatch.setenv("WORKER_CHAIN_SECONDS", "0")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()
