"""The pipeline: every stage, in order. Adding a stage is a module and a line here.

The queue names stages by string (a queue row's `stage` column) and is
given their names (`STAGE_NAMES`, `stage_names_from`), never this list;
the dispatcher sends work without importing `actors`;
`actors/stages.py` declares one Dramatiq actor per entry.
"""

from __future__ import annotations

from docqueue.stages import chunk, embed, enrich, extract_images, extract_text, inspect, ocr, searchable_pdf
from docqueue.stages.stage import Stage

PIPELINE: tuple[Stage, ...] = (
    inspect.STAGE,
    extract_text.STAGE,
    ocr.STAGE,
    searchable_pdf.STAGE,
    extract_images.STAGE,
    chunk.STAGE,
    embed.STAGE,
    enrich.STAGE,
)

#: Every stage's name, in order: what the queue, its filters and the dashboard are given.
STAGE_NAMES: tuple[str, ...] = tuple(stage.name for stage in PIPELINE)

_BY_NAME = {stage.name: stage for stage in PIPELINE}
_TOTAL_WEIGHT = sum(stage.weight for stage in PIPELINE)


def first_stage() -> Stage:
    return PIPELINE[0]


def stage_names_from(name: str) -> tuple[str, ...]:
    """The names of stage `name` and every stage after it: the stages of a run that starts there."""
    return STAGE_NAMES[STAGE_NAMES.index(name) :]


def stage_named(name: str) -> Stage:
    """The stage called `name`; KeyError for an unknown one."""
    return _BY_NAME[name]


def next_stage(name: str) -> Stage | None:
    """The stage after `name`, or None when `name` is the last."""
    index = PIPELINE.index(_BY_NAME[name])
    return PIPELINE[index + 1] if index + 1 < len(PIPELINE) else None


def progress_span(name: str) -> tuple[int, int]:
    """(progress before stage `name` starts, its share of progress), in percent, for reporting units within it."""
    before = progress_after(PIPELINE[PIPELINE.index(_BY_NAME[name]) - 1].name) if PIPELINE[0].name != name else 0
    return before, progress_after(name) - before


def progress_after(name: str) -> int:
    """The document's progress (percent) once stage `name` is done: the weights of it and all before it."""
    index = PIPELINE.index(_BY_NAME[name])
    return round(100 * sum(stage.weight for stage in PIPELINE[: index + 1]) / _TOTAL_WEIGHT)
