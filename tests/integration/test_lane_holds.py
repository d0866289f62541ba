"""Holding one lane or one stage, against real Postgres and through the admin routes.

An operator holds `enrich` while a provider is down, or the bulk lane, and
everything else goes on: admission skips the held work, a claim refuses it,
a job reaching a held stage waits in pending without a slot, and all of it
moves again once resumed.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from docqueue.models import User
from docqueue.pipeline import STAGE_NAMES
from docqueue.queue import DocumentQueueService
from docqueue.queue.pausing import hold, release
from tests.support.accounts import PASSWORD, last_audit, operator_logged_in
from tests.support.factories import add_bulk_documents, add_document
from tests.support.queue import admit, admitted_job, claim, job_row, only_job_id


@pytest.fixture
def operator(session, make_user):
    operator_id, _ = make_user("holder@example.com", role="operator")
    return session.get(User, operator_id)


def test_a_held_lane_waits_while_the_other_is_admitted(session, make_user, operator):
    owner, _ = make_user(concurrent_ocr_jobs=10)
    interactive = only_job_id(session, add_document(session, owner))
    bulk = [only_job_id(session, document_id) for document_id in add_bulk_documents(session, owner, 2)]
    assert hold(session, operator, "lane", "bulk", STAGE_NAMES)
    session.commit()
    assert [dispatch.job_id for dispatch in admit(session)] == [interactive]
    assert {job_row(session, job).status for job in bulk} == {"pending"}
    assert release(session, operator, "lane", "bulk", STAGE_NAMES)
    session.commit()
    assert sorted(dispatch.job_id for dispatch in admit(session)) == sorted(bulk)


def test_a_held_stage_stops_admission_claims_and_hand_ons_into_it_until_resumed(session, make_user, operator):
    queue = DocumentQueueService(session)
    _, job_id = admitted_job(session, make_user)  # queued at inspect
    hold(session, operator, "stage", "inspect", STAGE_NAMES)
    session.commit()
    assert claim(session, job_id) is None, "a queued job of a held stage must not be claimed"
    assert job_row(session, job_id).status == "queued"
    release(session, operator, "stage", "inspect", STAGE_NAMES)
    session.commit()
    first = claim(session, job_id)

    # Finishing inspect while extract_text is held: the job waits in pending, taking no slot.
    hold(session, operator, "stage", "extract_text", STAGE_NAMES)
    session.commit()
    assert queue.continue_with(first, "extract_text", 10, "w1") is None
    assert queue.advance(first, "extract_text", 10) is None
    session.commit()
    row = job_row(session, job_id)
    assert (row.status, row.stage, row.lease_token) == ("pending", "extract_text", None)
    assert admit(session) == []
    release(session, operator, "stage", "extract_text", STAGE_NAMES)
    session.commit()
    assert [(dispatch.job_id, dispatch.stage) for dispatch in admit(session)] == [(job_id, "extract_text")]
    assert claim(session, job_id, stage="extract_text").attempt == 1


def test_unknown_holds_are_refused_and_the_dashboard_holds_and_resumes(app, session, make_user):
    make_user("op@example.com", password=PASSWORD, role="operator")
    client, csrf = operator_logged_in(app, "op@example.com")
    refused = client.post("/admin/queue/hold", data={"csrf_token": csrf, "scope": "stage", "name": "bake"})
    assert refused.status_code == 400 and "stage must be one of inspect" in refused.get_data(as_text=True)
    assert (
        client.post("/admin/queue/hold", data={"csrf_token": csrf, "scope": "stage", "name": "enrich"}).status_code
        == 302
    )
    assert last_audit(session) == ("op@example.com", "queue.hold", 1, "stage enrich")
    page = client.get("/admin").get_data(as_text=True)
    assert "Holding the stage enrich" in page
    assert 'data-hold="stage-enrich" class="held"' in page and 'data-hold="stage-embed" class=""' in page
    held = session.execute(sa.text("SELECT scope, name, paused_by FROM paused_work")).all()
    assert [tuple(row) for row in held] == [("stage", "enrich", "op@example.com")]
    assert (
        client.post("/admin/queue/release", data={"csrf_token": csrf, "scope": "stage", "name": "enrich"}).status_code
        == 302
    )
    assert last_audit(session) == ("op@example.com", "queue.release", 1, "stage enrich")
    assert session.execute(sa.text("SELECT count(*) FROM paused_work")).scalar() == 0
