"""Browser-page behaviour that needs no browser: error paths of the upload form."""

from __future__ import annotations

import io

import sqlalchemy as sa


def test_oversized_upload_is_refused_with_a_message_and_stores_nothing(app, make_user, session):
    make_user("page@example.com", password="pw")
    app.config.update(MAX_CONTENT_LENGTH=2048, WTF_CSRF_ENABLED=False)
    client = app.test_client()
    assert client.post("/login", data={"email": "page@example.com", "password": "pw"}).status_code == 302
    response = client.post(
        "/upload",
        data={"files": (io.BytesIO(b"%PDF-" + b"x" * 5000), "big.pdf")},
        content_type="multipart/form-data",
        follow_redirects=True,
    )
    assert response.status_code == 200
    assert b"the upload is larger than the 2048 byte limit (MAX_UPLOAD_MB); nothing was stored" in response.data
    assert session.execute(sa.text("SELECT count(*) FROM documents")).scalar() == 0
