"""Stage time limits: a base per stage from the settings, scaled with the document's size."""

from __future__ import annotations

import pytest

from docqueue.pipeline import stage_named
from docqueue.queue import Claim
from docqueue.settings import get_settings
from docqueue.stages.time_limits import base_time_limit, size_factor

MB = 1024 * 1024


@pytest.fixture
def limits(monkeypatch):
    for name, value in {
        "DISCOVERY_TIME_LIMIT_SECONDS": "300",
        "CHUNKING_TIME_LIMIT_SECONDS": "180",
        "IMAGE_TIME_LIMIT_SECONDS": "600",
        "EMBEDDING_TIME_LIMIT_SECONDS": "1200",
        "TIME_LIMIT_PAGES_PER_STEP": "200",
        "TIME_LIMIT_MB_PER_STEP": "50",
        "TIME_LIMIT_MAX_FACTOR": "10",
    }.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    yield
    monkeypatch.undo()
    get_settings.cache_clear()


def claim(timeout_seconds: int = 45) -> Claim:
    return Claim(1, 1, 1, "process", "inspect", 1, 3, "token", timeout_seconds)


@pytest.mark.parametrize(
    "size, pages, factor",
    [
        (1 * MB, None, 1),
        (1 * MB, 199, 1),
        (1 * MB, 200, 2),
        (1 * MB, 1000, 6),
        (120 * MB, 10, 3),
        (120 * MB, 1000, 6),
        (1 * MB, 10_000, 10),
    ],
)
def test_bigger_documents_get_proportionally_longer_up_to_a_cap(limits, size, pages, factor):
    assert size_factor(size, pages) == factor


def test_discovery_stages_take_their_base_from_the_setting(limits, monkeypatch):
    assert base_time_limit(stage_named("inspect"), claim()) == 300
    monkeypatch.setenv("DISCOVERY_TIME_LIMIT_SECONDS", "7")
    get_settings.cache_clear()
    assert base_time_limit(stage_named("extract_text"), claim()) == 7


@pytest.mark.parametrize(
    "stage, base",
    [("chunk", 180), ("extract_images", 600), ("embed", 1200), ("enrich", 1200), ("searchable_pdf", 45)],
)
def test_each_stage_takes_its_base_from_its_setting(limits, stage, base):
    assert base_time_limit(stage_named(stage), claim(timeout_seconds=45)) == base
