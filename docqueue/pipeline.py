"""The order of processing stages and the Dramatiq actor that runs each.

The queue service and dispatcher name actors by string, so `docqueue` can
send work without importing `actors`; `actors/` declares one actor per entry.
"""

from __future__ import annotations

from dataclasses import dataclass

#: The Dramatiq queue every stage message travels on.
STAGE_QUEUE = "documents"


@dataclass(frozen=True)
class Stage:
    name: str
    actor_name: str
    #: Document progress (percent) once this stage is done.
    progress_when_done: int


PIPELINE: tuple[Stage, ...] = (
    Stage(name="inspect", actor_name="inspect_document", progress_when_done=10),
    Stage(name="extract_text", actor_name="extract_text", progress_when_done=100),
)

_BY_NAME = {stage.name: stage for stage in PIPELINE}


def first_stage() -> Stage:
    return PIPELINE[0]


def stage_named(name: str) -> Stage:
    """The stage called `name`; KeyError for an unknown one."""
    return _BY_NAME[name]


def next_stage(name: str) -> Stage | None:
    """The stage after `name`, or None when `name` is the last."""
    index = PIPELINE.index(_BY_NAME[name])
    return PIPELINE[index + 1] if index + 1 < len(PIPELINE) else None
