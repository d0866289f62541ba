"""The audit log: who did what to the queue or to an account, to how many, and when."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from docqueue.models import AuditRecord, User

#: What the log names as the actor of a `docqueue` command run on the server.
CLI_ACTOR = "cli"


def record_audit(session: Session, actor: User | None, action: str, count: int = 0, detail: str = "") -> None:
    """Add one audit record in the caller's transaction; `actor` None means the command line."""
    session.add(
        AuditRecord(
            actor_id=actor.id if actor else None,
            actor=actor.email if actor else CLI_ACTOR,
            action=action,
            count=count,
            detail=detail,
        )
    )


def recent_audit(session: Session, limit: int = 20) -> list[AuditRecord]:
    """The newest audit records first."""
    return list(session.scalars(select(AuditRecord).order_by(AuditRecord.id.desc()).limit(limit)))
