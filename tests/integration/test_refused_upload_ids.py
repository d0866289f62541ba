"""A refused upload uses up no document id: the next accepted upload gets the next number."""

from __future__ import annotations

import io

from tests.support.factories import make_pdf


def upload(client, token: str, files: list[tuple[bytes, str]]):
    return client.post(
        "/api/documents",
        headers={"Authorization": f"Bearer {token}"},
        data={"file": [(io.BytesIO(data), name) for data, name in files]},
        content_type="multipart/form-data",
    )


def test_refused_uploads_leave_no_gap_in_document_ids(app, make_user):
    _, token = make_user()
    client = app.test_client()
    first = upload(client, token, [(make_pdf(["one"]), "one.pdf")])
    assert first.status_code == 202, first.get_json()
    empty = upload(client, token, [(b"", "empty.pdf")])
    assert empty.status_code == 400 and empty.get_json()["error"] == "the file is empty"
    # A good file beside an empty one: nothing is stored, and no id is drawn for either.
    both = upload(client, token, [(make_pdf(["good"]), "good.pdf"), (b"", "empty.pdf")])
    assert both.status_code == 400 and "nothing was stored" in both.get_json()["error"]
    second = upload(client, token, [(make_pdf(["two"]), "two.pdf")])
    assert second.status_code == 202, second.get_json()
    assert second.get_json()["id"] == first.get_json()["id"] + 1
