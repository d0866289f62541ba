"""The queue's composed statements, whole, as Postgres receives them: one checked-in file each under tests/sql/.

The transitions are built from named fragments (`docqueue/queue/fragments.py`), so no module shows a
whole claim. Each test here runs one transition on a real database, records the statement it sent,
and compares it with its snapshot: a change to a fragment shows up as a readable diff of every
statement it reaches. After a deliberate change, `UPDATE_SQL_SNAPSHOTS=1 pytest tests/integration/
test_sql_snapshots.py` rewrites the files; read the diff before committing it.
"""

from __future__ import annotations

import os
import re
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa

from docqueue.queue import DocumentQueueService
from tests.support.factories import add_document
from tests.support.queue import admit, claim, only_job_id

SNAPSHOTS = Path(__file__).resolve().parents[1] / "sql"


@contextmanager
def statements_sent(session):
    """The statements the session's connection sends inside the block, in order."""
    sent: list[str] = []

    def record(connection, cursor, statement, *args):
        sent.append(statement)

    engine = session.get_bind()
    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)


def normalised(statement: str) -> str:
    """The statement with its indentation evened out, so a snapshot reads as SQL."""
    lines = [line.rstrip() for line in statement.strip("\n").splitlines()]
    lines = [line for line in lines if line.strip()]
    indent = min((len(line) - len(line.lstrip()) for line in lines[1:]), default=0)
    return "\n".join([lines[0].strip(), *(line[indent:] for line in lines[1:])]) + "\n"


def matches_snapshot(name: str, sent: list[str], containing: str) -> None:
    [statement] = [each for each in sent if re.search(containing, each)]
    path = SNAPSHOTS / f"{name}.sql"
    if os.environ.get("UPDATE_SQL_SNAPSHOTS"):
        SNAPSHOTS.mkdir(exist_ok=True)
        path.write_text(normalised(statement))
    assert path.exists(), f"no snapshot {path.name}: run with UPDATE_SQL_SNAPSHOTS=1 and read it"
    assert normalised(statement) == path.read_text(), f"{path.name} changed: review it, then update the snapshot"


@pytest.fixture
def queued_job(session, make_user):
    owner, _ = make_user()
    job_id = only_job_id(session, add_document(session, owner))
    return job_id


def test_admission(session, queued_job):
    with statements_sent(session) as sent:
        admit(session)
    matches_snapshot("admission", sent, r"WITH[\s\S]*UPDATE document_queue[\s\S]*'queued'")


def test_claim(session, queued_job):
    admit(session)
    with statements_sent(session) as sent:
        assert claim(session, queued_job) is not None
    matches_snapshot("claim", sent, r"UPDATE document_queue SET\s+status = 'processing'")


def test_hand_on_in_the_same_lane(session, queued_job):
    admit(session)
    held = claim(session, queued_job)
    with statements_sent(session) as sent:
        DocumentQueueService(session).continue_with(held, "extract_text", 10, "w1")
        session.commit()
    matches_snapshot("hand_on", sent, r"UPDATE document_queue")


def test_recovery_of_a_dead_workers_job(session, queued_job):
    admit(session)
    claim(session, queued_job)
    session.execute(sa.text("UPDATE document_queue SET lease_expires_at = now() - interval '1 hour'"))
    session.commit()
    with statements_sent(session) as sent:
        counts = DocumentQueueService(session).recover_stale_jobs()
        session.commit()
    assert counts.requeued == 1
    matches_snapshot("recovery", sent, r"UPDATE document_queue")
