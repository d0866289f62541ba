"""An operator's changes to the queue, as the admin pages ask for them: one write path.

Every write the web makes goes through a command that commits and then wakes the dispatcher:
`docqueue.commands` for what owners do (uploads, reprocessing, retries), `operator_change` for
what operators do. No view commits or nudges the dispatcher by itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.orm import Session

from docqueue.dispatch.dispatcher import nudge_dispatcher
from docqueue.models import User
from docqueue.queue.operator import OperatorActions


@contextmanager
def operator_change(session: Session, actor: User | None, *, lets_work_in: bool) -> Iterator[OperatorActions]:
    """The operator's actions on `session`, committed when the block ends (rolled back if it raises);
    then the dispatcher is woken when the change may let work in (a retry, a resume, a release)."""
    try:
        yield OperatorActions(session, actor)
    except BaseException:
        session.rollback()
        raise
    session.commit()
    if lets_work_in:
        nudge_dispatcher(session)
