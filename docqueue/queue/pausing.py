"""Holding one lane or one stage: the per-queue pause the best dashboards have.

An operator holds `enrich` while the chat provider is down, or the `bulk`
lane while an import would crowd a demo, without pausing admission for
everything (`OperatorActions.set_admission_paused`). A hold is a row of
`paused_work`; the statements that move work read it in their one
conditional statement (`fragments.not_held`):

- admission skips pending jobs of a held lane or stage;
- a worker's claim refuses queued ones (they stay queued, their message is
  re-sent by the clock, and they run once resumed);
- a job finishing the stage before a held one waits in `pending`, taking
  no slot, and is admitted once resumed.

Running work carries on. Each hold and release is audited.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.orm import Session

from docqueue.accounts.audit import record_audit
from docqueue.models import User
from docqueue.statuses import QueueLane


#: What may be held, by scope.
def holdable(stage_names: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """What an operator may hold, by scope: the admission lanes, and `stage_names` (the pipeline's)."""
    return {"lane": tuple(lane.value for lane in QueueLane), "stage": tuple(stage_names)}


@dataclass(frozen=True)
class Held:
    scope: str
    name: str
    paused_at: datetime
    paused_by: str


def _checked(scope: str, name: str, stage_names: Sequence[str]) -> None:
    choices = holdable(stage_names)
    if scope not in choices:
        raise ValueError(f"scope must be one of {', '.join(choices)}")
    if name not in choices[scope]:
        raise ValueError(f"{scope} must be one of {', '.join(choices[scope])}")


def hold(session: Session, actor: User | None, scope: str, name: str, stage_names: Sequence[str]) -> bool:
    """Hold lane or stage `name`; False if it was held already. ValueError for an unknown one."""
    _checked(scope, name, stage_names)
    inserted = session.execute(
        text(
            "INSERT INTO paused_work (scope, name, paused_by) VALUES (:scope, :name, :by) "
            "ON CONFLICT (scope, name) DO NOTHING"
        ),
        {"scope": scope, "name": name, "by": actor.email if actor else "the command line"},
    ).rowcount
    record_audit(session, actor, "queue.hold", inserted, f"{scope} {name}")
    return bool(inserted)


def release(session: Session, actor: User | None, scope: str, name: str, stage_names: Sequence[str]) -> bool:
    """Resume lane or stage `name`; False if it was not held. ValueError for an unknown one."""
    _checked(scope, name, stage_names)
    deleted = session.execute(
        text("DELETE FROM paused_work WHERE scope = :scope AND name = :name"), {"scope": scope, "name": name}
    ).rowcount
    record_audit(session, actor, "queue.release", deleted, f"{scope} {name}")
    return bool(deleted)


def held_work(session: Session) -> list[Held]:
    """Every lane and stage held now, lanes first."""
    rows = session.execute(text("SELECT scope, name, paused_at, paused_by FROM paused_work ORDER BY scope, name"))
    return [Held(*row) for row in rows]
