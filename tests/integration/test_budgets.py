"""Per-document budgets against generated hostile PDFs: text, chunks, AI calls, tiny images, pages.

Stages run through `run_stage` in this process with the real PDF pool, as
the worker would; the AI services are a real local HTTP server
(tests/support/service_stub.py) that counts the requests it gets.
"""

from __future__ import annotations

import pymupdf
import pytest
import sqlalchemy as sa

from docqueue.runtime.pdf_processes import shutdown_pdf_pool
from docqueue.settings import get_settings
from tests.support.factories import add_document, make_pdf
from tests.support.queue import document_row
from tests.support.service_stub import ServiceStub
from tests.support.stages import run_until_settled, stage_record


@pytest.fixture
def budget_settings(test_env, monkeypatch):
    """Set settings in this process and in fresh PDF pool processes (which read them when they start)."""

    def apply(**values):
        for name, value in values.items():
            monkeypatch.setenv(name, str(value))
        get_settings.cache_clear()
        shutdown_pdf_pool()

    yield apply
    monkeypatch.undo()
    get_settings.cache_clear()
    shutdown_pdf_pool()


@pytest.fixture
def owner(make_user, broker):
    return make_user()


def shared_stream_pdf(pages: int, characters_a_page: int) -> bytes:
    """The issue's text bomb, small: `pages` pages that all show one content stream drawing
    `characters_a_page` characters (100-letter strings drawn over each other)."""
    document = pymupdf.open()
    first = document.new_page()
    first.insert_text((72, 72), "x")
    font = first.get_fonts()[0][4]
    letters = b"qwertyuiopasdfghjklzxcvbnm" * 4
    draws = (b"0 0 Td (" + letters[:100] + b") Tj ") * (characters_a_page // 100)
    contents = first.get_contents()[0]
    document.update_stream(contents, b"BT /" + font.encode() + b" 11 Tf 72 720 Td " + draws + b"ET")
    resources = document.xref_get_key(first.xref, "Resources")
    for _ in range(pages - 1):
        page = document.new_page()
        document.xref_set_key(page.xref, "Contents", f"{contents} 0 R")
        document.xref_set_key(page.xref, "Resources", resources[1])
    return document.tobytes(deflate=True, garbage=1)


def tiny_images_pdf(tiny: int, big: int) -> bytes:
    """One page showing `tiny` distinct 2 × 2 images and `big` distinct 64 × 64 ones.

    Written as objects: `Page.insert_image` scans the page's images on each call, which
    took 6 s for 302 of them.
    """
    document = pymupdf.open()
    page = document.new_page()
    names, drawing = [], []
    for n in range(tiny + big):
        side = 2 if n < tiny else 64
        xref = document.get_new_xref()
        document.update_object(
            xref, f"<</Type/XObject/Subtype/Image/Width {side}/Height {side}/ColorSpace/DeviceRGB/BitsPerComponent 8>>"
        )
        document.update_stream(xref, bytes((n % 256, (n // 256) % 256, 7)) * side * side)
        x, y = 20 + (n % 50) * 10, 20 + (n // 50) * 10
        names.append(f"/Im{n} {xref} 0 R")
        drawing.append(f"q 8 0 0 8 {x} {page.rect.height - y - 8} cm /Im{n} Do Q")
    document.xref_set_key(page.xref, "Resources", f"<</XObject<<{''.join(names)}>>>>")
    contents = document.get_new_xref()
    document.update_object(contents, "<<>>")
    document.update_stream(contents, "\n".join(drawing).encode())
    document.xref_set_key(page.xref, "Contents", f"{contents} 0 R")
    page.insert_text((72, 700), "a catalogue page of specks")
    return document.tobytes(garbage=1, deflate=True)


def api_detail(app, token: str, document_id: int) -> dict:
    response = app.test_client().get(f"/api/documents/{document_id}", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    return response.json


def requests_to(stub: ServiceStub, path: str) -> list:
    return [request for request in stub.requests if request.path == path]


def test_a_shared_stream_text_bomb_is_cut_at_each_budget_and_the_cuts_are_shown(
    app, session, owner, stub, budget_settings
):
    budget_settings(
        MAX_DOCUMENT_TEXT_CHARS=500_000,
        MAX_DOCUMENT_CHUNKS=40,
        MAX_AI_CALLS_PER_DOCUMENT=3,
        EMBEDDINGS_PROVIDER="openai",
        EMBEDDINGS_BASE_URL=stub.url + "/v1",
        EMBEDDINGS_BATCH_SIZE=10,
        MAX_CONCURRENT_IO=2,
    )
    user_id, token = owner
    data = shared_stream_pdf(pages=20, characters_a_page=200_000)
    assert len(data) < 100_000, "small to upload, 4 M characters to extract"
    document_id = add_document(session, user_id, data, filename="bomb.pdf")
    job = run_until_settled(session, document_id)
    assert job.status == "completed", job.error_message

    pages = session.execute(
        sa.text("SELECT page_number, char_count, text_cut FROM document_pages WHERE job_id = :j ORDER BY 1"),
        {"j": job.id},
    ).all()
    assert len(pages) == 20
    assert sum(page.char_count for page in pages) == 500_000, "the document's text stops at its budget"
    assert pages[0].char_count == pages[1].char_count > 190_000, "whole pages while the budget lasts"
    assert 0 < pages[2].char_count < pages[0].char_count and all(page.char_count == 0 for page in pages[3:])
    assert all(page.text_cut for page in pages[2:]) and not any(page.text_cut for page in pages[:2])
    document = document_row(session, document_id)
    # Pages the budget left without text are not for OCR, and not counted as cut by the per-page cap.
    assert (document.ocr_status, document.text_truncated_pages) == ("not_needed", 0)
    assert stage_record(session, job.id, "ocr").status == "skipped"

    chunks = session.execute(sa.text("SELECT count(*) FROM document_chunks WHERE job_id = :j"), {"j": job.id})
    assert chunks.scalar() == 40
    embedding_requests = requests_to(stub, "/v1/embeddings")
    assert len(embedding_requests) == 3, "the AI call budget bounds the requests sent"
    embedded = session.execute(
        sa.text("SELECT count(*) FROM document_chunks WHERE job_id = :j AND embedding IS NOT NULL"), {"j": job.id}
    ).scalar()
    assert embedded == 30

    cuts = api_detail(app, token, document_id)["budget_cuts"]
    assert set(cuts) == {"text", "chunks", "embed"}
    assert cuts["text"]["setting"] == "MAX_DOCUMENT_TEXT_CHARS" and cuts["text"]["limit"] == 500_000
    assert "text stops at page 3 of 20" in cuts["text"]["message"]
    assert cuts["chunks"]["setting"] == "MAX_DOCUMENT_CHUNKS" and "40 chunks" in cuts["chunks"]["message"]
    assert cuts["embed"]["setting"] == "MAX_AI_CALLS_PER_DOCUMENT"
    assert "10 chunks and images were not embedded" in cuts["embed"]["message"]

    # The document's page says so too.
    app.config.update(WTF_CSRF_ENABLED=False)
    client = app.test_client()
    session.execute(sa.text("UPDATE users SET password_hash = :h WHERE id = :u"), {"h": _hash("pw"), "u": user_id})
    session.commit()
    email = session.execute(sa.text("SELECT email FROM users WHERE id = :u"), {"u": user_id}).scalar()
    assert client.post("/login", data={"email": email, "password": "pw"}).status_code == 302
    shown = client.get(f"/documents/{document_id}").get_data(as_text=True)
    assert "text stops at page 3 of 20" in shown and "chunking stopped at 40 chunks" in shown


def _hash(password: str) -> str:
    from werkzeug.security import generate_password_hash

    return generate_password_hash(password)


def test_images_too_small_to_mean_anything_are_neither_described_nor_embedded(session, owner, stub, budget_settings):
    budget_settings(
        CHAT_BASE_URL=stub.url,
        CHAT_VISION_MODEL="stub-vision",
        EMBEDDINGS_PROVIDER="openai",
        EMBEDDINGS_BASE_URL=stub.url,
        EMBEDDINGS_IMAGE_MODEL="stub-clip",
        MAX_CONCURRENT_IO=4,
    )
    document_id = add_document(session, owner[0], tiny_images_pdf(tiny=300, big=2), filename="specks.pdf")
    job = run_until_settled(session, document_id)
    assert job.status == "completed", job.error_message
    stored = session.execute(sa.text("SELECT count(*) FROM document_images WHERE job_id = :j"), {"j": job.id})
    assert stored.scalar() == 302, "every image is still found and stored"
    vision = [
        r for r in requests_to(stub, "/v1/chat/completions") if isinstance(r.json()["messages"][0]["content"], list)
    ]
    assert len(vision) == 2, "only the two 64 × 64 images are described"
    image_inputs = [r for r in requests_to(stub, "/v1/embeddings") if r.json()["model"] == "stub-clip"]
    assert sum(len(r.json()["input"]) for r in image_inputs) == 2, "only they are embedded"
    assert document_row(session, document_id).budget_cuts == {}


def test_the_ai_call_budget_stops_vision_requests_and_says_so(app, session, owner, stub, budget_settings):
    budget_settings(
        CHAT_BASE_URL=stub.url,
        CHAT_VISION_MODEL="stub-vision",
        MIN_AI_IMAGE_SIDE=1,
        MAX_AI_CALLS_PER_DOCUMENT=5,
        MAX_CONCURRENT_IO=3,
    )
    user_id, token = owner
    document_id = add_document(session, user_id, tiny_images_pdf(tiny=40, big=0), filename="many.pdf")
    job = run_until_settled(session, document_id)
    assert job.status == "completed", job.error_message
    # Before: one request per distinct image (the page of 20,000 made 20,141).
    assert len(requests_to(stub, "/v1/chat/completions")) == 5
    calls = session.execute(sa.text("SELECT ai_calls FROM document_queue WHERE id = :j"), {"j": job.id}).scalar()
    assert calls == 5
    cut = api_detail(app, token, document_id)["budget_cuts"]["enrich"]
    assert cut["limit"] == 5 and "40 images were not described" not in cut["message"]
    assert "36 images were not described" in cut["message"]


def test_a_document_over_the_page_limit_is_refused_at_inspect_once(session, owner, budget_settings):
    budget_settings(MAX_DOCUMENT_PAGES=5)
    document_id = add_document(session, owner[0], make_pdf([f"page {n}" for n in range(6)]))
    job = run_until_settled(session, document_id)
    assert (job.status, job.stage) == ("failed", "inspect")
    assert "6 pages, over the limit of 5 pages a document (MAX_DOCUMENT_PAGES)" in job.error_message
    assert stage_record(session, job.id, "inspect").attempts == 1, "a refusal is not retried"
    assert document_row(session, document_id).status == "failed"
    within = add_document(session, owner[0], make_pdf([f"page {n}" for n in range(5)]))
    assert run_until_settled(session, within).status == "completed"
