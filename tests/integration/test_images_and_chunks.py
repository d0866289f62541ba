"""Image extraction and chunking on real and hostile PDFs, through `run_stage` with the real PDF pool."""

from __future__ import annotations

import hashlib
import itertools
import re
import struct

import pymupdf
import pytest
import sqlalchemy as sa

from docqueue.results.chunks import split_into_chunks
from tests.support.factories import add_document
from tests.support.processes import CORPUS
from tests.support.stages import run_until_settled, stage_record

IMAGE_FILES = ["google-doc-document.pdf", "grayscale-image.pdf", "imagemagick-images.pdf", "pdflatex-image.pdf"]


def auth(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("name", IMAGE_FILES + ["inline-image.pdf"])
def test_every_image_object_is_found_and_served(session, make_user, client, corpus_truth, name):
    user_id, token = make_user()
    document_id = add_document(session, user_id, (CORPUS / "pdf" / name).read_bytes(), filename=name)
    job = run_until_settled(session, document_id)
    assert job.status == "completed", job.error_message
    listing = client.get(f"/api/documents/{document_id}/images?limit=1000", headers=auth(token)).json
    images = listing["images"]
    assert len(images) == corpus_truth[name]["image_xrefs"]
    for image in images:
        content = client.get(image["url"], headers=auth(token))
        assert content.status_code == 200
        assert hashlib.sha256(content.data).hexdigest() == image["sha256"]
        assert content.mimetype == f"image/{image['format']}"
        assert image["size"] == len(content.data) and image["width"] > 0 and image["page"] >= 1
    # Bytes shared by several image objects are stored once.
    blobs = session.execute(
        sa.text("SELECT count(DISTINCT blob_key) FROM blob_chunks WHERE blob_key LIKE :k"),
        {"k": f"documents/{document_id}/runs/{job.id}/images/%"},
    ).scalar()
    assert blobs == len({image["sha256"] for image in images})


def test_images_list_pages_with_next(session, make_user, client):
    user_id, token = make_user()
    name = "imagemagick-images.pdf"
    document_id = add_document(session, user_id, (CORPUS / "pdf" / name).read_bytes(), filename=name)
    assert run_until_settled(session, document_id).status == "completed"
    first = client.get(f"/api/documents/{document_id}/images?limit=4", headers=auth(token)).json
    second = client.get(first["next"], headers=auth(token)).json
    assert (len(first["images"]), len(second["images"]), second["next"]) == (4, 2, None)
    assert client.get(f"/api/documents/{document_id}/images?limit=x", headers=auth(token)).status_code == 400


def _tiny_image(fmt: str, color: tuple[int, int, int]) -> bytes:
    pixmap = pymupdf.Pixmap(pymupdf.csRGB, pymupdf.IRect(0, 0, 16, 16), False)
    pixmap.set_rect(pixmap.irect, color)
    return pixmap.tobytes(fmt)


def _claim_jpeg_size(jpeg: bytes, width: int, height: int) -> bytes:
    """The JPEG with its start-of-frame header saying `width` × `height` (its data still 16 × 16)."""
    data = bytearray(jpeg)
    position = 2
    while data[position + 1] not in (0xC0, 0xC1, 0xC2):
        position += 2 + struct.unpack(">H", data[position + 2 : position + 4])[0]
    struct.pack_into(">HH", data, position + 5, height, width)
    return bytes(data)


def pixel_bomb_pdf() -> bytes:
    """A page with a real image and two bombs: a JPEG whose header claims 60000 × 60000, and an image
    whose PDF dictionary claims 30000 × 30000. Nothing needs decoding to know they are too big."""
    document = pymupdf.open()
    page = document.new_page()
    page.insert_text((72, 72), "a page with pixel bombs")
    page.insert_image(pymupdf.Rect(72, 100, 172, 200), stream=_tiny_image("png", (0, 0, 255)))
    page.insert_image(pymupdf.Rect(200, 100, 300, 200), stream=_tiny_image("jpeg", (200, 30, 30)))
    page.insert_image(pymupdf.Rect(72, 300, 172, 400), stream=_tiny_image("png", (0, 200, 0)))
    xrefs = [info[0] for info in page.get_images(full=True)]
    jpeg_xref = next(x for x in xrefs if "DCTDecode" in document.xref_get_key(x, "Filter")[1])
    document.update_stream(
        jpeg_xref, _claim_jpeg_size(document.xref_stream_raw(jpeg_xref), 60000, 60000), compress=False
    )
    document.xref_set_key(jpeg_xref, "Filter", "/DCTDecode")
    claimed_xref = xrefs[-1]
    document.xref_set_key(claimed_xref, "Width", "30000")
    document.xref_set_key(claimed_xref, "Height", "30000")
    return document.tobytes()


def test_pixel_bombs_are_skipped_with_their_size_named(session, make_user, client):
    user_id, token = make_user()
    document_id = add_document(session, user_id, pixel_bomb_pdf(), filename="bombs.pdf")
    job = run_until_settled(session, document_id)
    assert job.status == "completed", job.error_message
    images = client.get(f"/api/documents/{document_id}/images", headers=auth(token)).json["images"]
    assert len(images) == 3
    skipped = sorted(image["skipped"] for image in images if image["skipped"])
    assert skipped == [
        "skipped: 30000 × 30000 pixels is over the limit of 89,478,485 (MAX_IMAGE_PIXELS)",
        "skipped: 60000 × 60000 pixels is over the limit of 89,478,485 (MAX_IMAGE_PIXELS)",
    ]
    assert all(image["url"] is None for image in images if image["skipped"])
    stored = [image for image in images if not image["skipped"]]
    assert len(stored) == 1 and client.get(stored[0]["url"], headers=auth(token)).status_code == 200


def test_chunks_overlap_and_remember_their_pages(session, make_user, client, monkeypatch):
    pages = ["alpha " * 120, "", "beta " * 150]  # page 2 has no text
    chunks = list(split_into_chunks(enumerate(pages, start=1), size=300, overlap=60))
    assert [c.seq for c in chunks] == list(range(1, len(chunks) + 1))
    assert all(len(c.text) <= 300 for c in chunks)
    assert chunks[0].page_start == 1 and chunks[-1].page_end == 3
    assert any(c.page_start == 1 and c.page_end == 3 for c in chunks)  # spans the empty page
    for before, after in itertools.pairwise(chunks):
        assert before.text[-40:] in after.text  # each starts inside the previous one's end
    joined = "".join(pages).replace(" ", "")
    assert set(joined) <= set("".join(c.text for c in chunks))


def test_chunks_api_lists_text_and_pages(session, make_user, client):
    user_id, token = make_user()
    name = "pdflatex-4-pages.pdf"
    document_id = add_document(session, user_id, (CORPUS / "pdf" / name).read_bytes(), filename=name)
    job = run_until_settled(session, document_id)
    assert job.status == "completed", job.error_message
    listing = client.get(f"/api/documents/{document_id}/chunks?limit=1000", headers=auth(token)).json
    chunks = listing["chunks"]
    assert chunks and listing["next"] is None and listing["complete"] is True
    assert chunks[0]["pages"][0] == 1 and chunks[-1]["pages"][-1] == 4
    record = stage_record(session, job.id, "chunk")
    assert (record.status, record.unit, record.units_done) == ("completed", "chunks", len(chunks))


def test_the_document_page_shows_thumbnails_skipped_images_and_chunks(app, make_user, session):
    make_user("viewer@example.com", password="pw")
    app.config.update(WTF_CSRF_ENABLED=False)
    browser = app.test_client()
    assert browser.post("/login", data={"email": "viewer@example.com", "password": "pw"}).status_code == 302
    user_id = session.execute(sa.text("SELECT id FROM users WHERE email = 'viewer@example.com'")).scalar()
    document_id = add_document(session, user_id, pixel_bomb_pdf(), filename="bombs.pdf")
    assert run_until_settled(session, document_id).status == "completed"
    page = browser.get(f"/documents/{document_id}").get_data(as_text=True)
    assert "60000 × 60000 pixels is over the limit" in page
    thumbnails = re.findall(r'<img src="([^"]+)"', page)
    assert len(thumbnails) == 1
    shown = browser.get(thumbnails[0])
    assert shown.status_code == 200 and shown.mimetype == "image/png"
    assert "a page with pixel bombs" in page.split('class="card chunks"')[1]
    assert "No enrichment answers" in page
    # Another user's browser gets nothing.
    make_user("other@example.com", password="pw")
    other = app.test_client()
    other.post("/login", data={"email": "other@example.com", "password": "pw"})
    assert other.get(thumbnails[0]).status_code == 404
