"""A dispatcher run that finds the lock taken never leaves its work for the clock's next tick."""

from __future__ import annotations

import io
import threading

import sqlalchemy as sa
from sqlalchemy.orm import Session

from docqueue.commands import submit
from docqueue.db import get_engine, session_scope
from docqueue.dispatch.dispatcher import process_document_queue
from tests.support.factories import add_document, make_pdf
from tests.support.processes import wait_until


def job_status(session, document_id: int) -> str:
    session.rollback()  # a fresh snapshot each poll
    return session.execute(
        sa.text("SELECT status FROM document_queue WHERE document_id = :d"), {"d": document_id}
    ).scalar_one()


def test_an_upload_made_while_the_dispatcher_runs_is_admitted_at_once_not_at_the_next_tick(
    session, make_user, procfile
):
    owner, _ = make_user()
    # The clock's tick is a minute away: only a dispatch request can admit the second upload in time.
    procfile("clock", DISPATCH_INTERVAL_SECONDS=60)
    wait_until(lambda: _clock_listening(session), timeout=30, message="the clock's first tick to pass")
    first = add_document(session, owner)
    first_job = session.execute(sa.text("SELECT id FROM document_queue WHERE document_id = :d"), {"d": first}).scalar()
    session.commit()

    # Hold the first job's row so a dispatcher run blocks inside admission, holding the dispatcher lock.
    blocker = Session(get_engine())
    blocker.execute(sa.text("SELECT 1 FROM document_queue WHERE id = :id FOR UPDATE"), {"id": first_job})
    reports = []
    busy = threading.Thread(target=lambda: reports.append(_dispatch_once()))
    busy.start()
    wait_until(lambda: _dispatcher_lock_held(session), timeout=10, message="the dispatcher to take its lock")

    with session_scope() as uploads:
        second = submit(uploads, owner, "second.pdf", "application/pdf", io.BytesIO(make_pdf(["late"]))).id
    assert job_status(session, second) == "pending"  # its own nudge found the lock taken

    blocker.commit()
    blocker.close()
    busy.join(timeout=30)
    assert reports and reports[0].ran and reports[0].more_requested
    wait_until(lambda: job_status(session, second) == "queued", timeout=10, message="the clock to admit it on request")
    assert job_status(session, first) == "queued"


def _dispatch_once():
    with session_scope() as session:
        return process_document_queue(session)


def _dispatcher_lock_held(session) -> bool:
    session.rollback()
    return (
        session.execute(
            sa.text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = hashtext('docqueue.dispatcher')::oid"
            )
        ).scalar()
        > 0
    )


def _clock_listening(session) -> bool:
    session.rollback()
    return (
        session.execute(
            sa.text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND query LIKE 'LISTEN docqueue_dispatch%'"
            )
        ).scalar()
        > 0
    )
