"""Room for a user with nothing in flight: a user past their share gives back their longest-running job."""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa

from docqueue.dispatch.dispatcher import process_document_queue
from docqueue.jobs import LeaseLost
from docqueue.queue import DocumentQueueService
from docqueue.queue.attempts import MADE_ROOM
from tests.support.factories import add_document
from tests.support.queue import admit, claim, job_row, only_job_id


def fill_every_slot(session, owner: int) -> list:
    """The owner's four documents admitted and claimed, one after another: the claims, oldest first."""
    jobs = [only_job_id(session, add_document(session, owner)) for _ in range(4)]
    assert len(admit(session)) == 4
    claims = []
    for job_id in jobs:
        claims.append(claim(session, job_id))
        time.sleep(0.01)  # distinct start times
    return claims


def attempts_of(session, job_id: int) -> list[sa.Row]:
    return session.execute(
        sa.text("SELECT outcome, error_message FROM stage_attempts WHERE job_id = :j ORDER BY id"), {"j": job_id}
    ).all()


def test_a_user_with_nothing_in_flight_gets_the_slot_of_the_longest_running_job_past_a_share(session, make_user):
    busy, _ = make_user(concurrent_ocr_jobs=2)
    prober, _ = make_user(concurrent_ocr_jobs=2)
    claims = fill_every_slot(session, busy)
    probe = only_job_id(session, add_document(session, prober))

    report = process_document_queue(session, maintenance=False)
    # Before: every slot stayed with the busy user until one of their (possibly endless) jobs ended.
    assert report.admitted == 1 and job_row(session, probe).status == "queued"
    oldest = job_row(session, claims[0].job_id)
    assert (oldest.status, oldest.stage, oldest.attempts, oldest.lease_token) == ("pending", "inspect", 0, None)
    assert attempts_of(session, claims[0].job_id) == [("handed_back", MADE_ROOM)]
    assert [job_row(session, held.job_id).status for held in claims[1:]] == ["processing"] * 3
    # Its worker can publish nothing more; its lease watch stops the stage.
    with pytest.raises(LeaseLost):
        DocumentQueueService(session).hold_lease(claims[0])
    session.rollback()

    # Nothing more is taken: the waiting user has a job in flight now, and the busy one only what is left.
    assert process_document_queue(session, maintenance=False).admitted == 0
    assert [job_row(session, held.job_id).status for held in claims[1:]] == ["processing"] * 3


def test_nobody_waiting_or_a_user_within_their_share_keeps_every_slot(session, make_user):
    busy, _ = make_user(concurrent_ocr_jobs=4)
    claims = fill_every_slot(session, busy)
    assert DocumentQueueService(session).make_room() == 0, "a lone user gave back a job"
    prober, _ = make_user(concurrent_ocr_jobs=2)
    add_document(session, prober)
    assert DocumentQueueService(session).make_room() == 0, "a user within their share gave back a job"
    session.commit()
    assert [job_row(session, held.job_id).status for held in claims] == ["processing"] * 4
