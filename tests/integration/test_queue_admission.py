"""Who gets the free slots against a real Postgres: each user's share, priority, age, and bulk work's reserved slot."""

from __future__ import annotations

import sqlalchemy as sa

from docqueue.queue import DocumentQueueService
from tests.support.factories import add_bulk_documents, add_document
from tests.support.queue import admit, claim, only_job_id


def test_each_users_share_goes_first_then_priority_then_age(session, make_user, test_env):
    from docqueue.settings import get_settings

    capacity = get_settings().ocr_concurrent_jobs  # 4 by default
    busy, _ = make_user(concurrent_ocr_jobs=2)
    other, _ = make_user(concurrent_ocr_jobs=10)
    busy_jobs = [only_job_id(session, add_document(session, busy, priority=9)) for _ in range(4)]
    low = [only_job_id(session, add_document(session, other, priority=1)) for _ in range(3)]
    high = only_job_id(session, add_document(session, other, priority=9))

    admitted = [d.job_id for d in admit(session)]
    # The busy user's share (2) and the other's high and oldest low job fill the 4 slots: jobs within
    # their owner's share go before the busy user's 3rd and 4th, whatever their priority.
    assert sorted(admitted) == sorted(busy_jobs[:2] + [high] + low[:1])
    assert len(admitted) == capacity
    assert admit(session) == [], "nothing more may enter while capacity is full"


def in_flight(session, owner=None) -> int:
    return session.execute(
        sa.text(
            "SELECT count(*) FROM document_queue WHERE status IN ('queued', 'processing') "
            "AND (CAST(:owner AS bigint) IS NULL OR owner_id = :owner)"
        ),
        {"owner": owner},
    ).scalar()


def finish(session, job_ids) -> None:
    """Complete admitted jobs, as workers would."""
    queue = DocumentQueueService(session)
    for job_id in job_ids:
        queue.mark_completed(claim(session, job_id))
    session.commit()


def test_a_lone_importer_gets_the_capacity_nobody_else_wants(session, make_user):
    importer, _ = make_user(concurrent_ocr_jobs=2)
    add_bulk_documents(session, importer, 10)
    assert len(admit(session)) == 4, "an idle system's capacity goes to the only user with work"


def test_an_upload_jumps_a_bulk_backlog_even_the_importers_own(session, make_user):
    importer, _ = make_user(concurrent_ocr_jobs=2)
    bystander, _ = make_user(concurrent_ocr_jobs=2)
    add_bulk_documents(session, importer, 30)
    running = [d.job_id for d in admit(session)]
    assert in_flight(session, importer) == 4

    own_upload = only_job_id(session, add_document(session, importer))
    other_upload = only_job_id(session, add_document(session, bystander))
    assert admit(session) == [], "no slot is free yet"
    finish(session, running[:1])
    # The bystander is within their share; the importer holds more than theirs.
    assert [d.job_id for d in admit(session)] == [other_upload]
    finish(session, running[1:2])
    # Still interactive before bulk: the importer's own upload goes before its backlog.
    assert [d.job_id for d in admit(session)] == [own_upload]


def test_bulk_work_keeps_a_slot_under_a_stream_of_uploads(session, make_user):
    importer, _ = make_user()
    uploaders = [make_user(concurrent_ocr_jobs=2)[0] for _ in range(3)]
    bulk = add_bulk_documents(session, importer, 5)
    uploads = [only_job_id(session, add_document(session, uploader)) for uploader in uploaders for _ in range(3)]
    admitted = {d.job_id for d in admit(session)}
    # BULK_RESERVED_SLOTS (1) goes to the oldest bulk job; interactive work takes the other 3.
    assert len(admitted) == 4
    assert admitted & set(bulk) == {only_job_id(session, bulk[0])}
    assert len(admitted & set(uploads)) == 3
