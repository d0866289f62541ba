"""The jobs list's stage, operation and priority filters, read from the URL as an operator's browser sends them."""

from __future__ import annotations

import re

from docqueue.models import User
from docqueue.pipeline import stage_names_from
from docqueue.queue import DocumentQueueService
from docqueue.queue.operator import OperatorActions
from tests.support.accounts import PASSWORD, log_in
from tests.support.factories import add_document
from tests.support.queue import only_job_id


def listed(client, query: str) -> set[int]:
    response = client.get(f"/admin/jobs?{query}")
    assert response.status_code == 200, response.data
    return {int(job_id) for job_id in re.findall(r'<tr id="job-(\d+)"', response.get_data(as_text=True))}


def test_the_jobs_list_filters_by_stage_operation_and_priority(no_csrf_app, make_user, session):
    operator_id, _ = make_user("op@example.com", password=PASSWORD, role="operator")
    owner, _ = make_user()
    processed = only_job_id(session, add_document(session, owner, priority=5))
    document_id = add_document(session, owner)
    first = only_job_id(session, document_id)
    # The same document's OCR asked for again: a second job, at another stage, operation and priority.
    OperatorActions(session, session.get(User, operator_id)).cancel([first])
    ocr = DocumentQueueService(session).enqueue(document_id, stage_names_from("ocr"), operation="ocr", priority=3)
    session.commit()
    client = no_csrf_app.test_client()
    log_in(client, "op@example.com")

    assert listed(client, "") == {processed, first, ocr}
    assert listed(client, "stage=ocr") == {ocr}
    assert listed(client, "stage=inspect") == {processed, first}
    assert listed(client, "operation=ocr") == {ocr}
    assert listed(client, "operation=process") == {processed, first}
    assert listed(client, "priority=3") == {ocr}
    assert listed(client, "priority=5") == {processed}
    assert listed(client, "stage=inspect&operation=process&priority=5") == {processed}
    assert listed(client, "stage=ocr&priority=5") == set()
    for bad in ("stage=nowhere", "operation=explode", "priority=101", "priority=-1"):
        assert client.get(f"/admin/jobs?{bad}").status_code == 400, bad
