"""Idempotency-Key on uploads: a replay answers as the first request did; a refused or bad key stores nothing."""

from __future__ import annotations

import io

import pytest
import sqlalchemy as sa

from tests.support.api import auth, upload
from tests.support.factories import make_pdf
from tests.support.odd_requests import stored


def test_idempotency_key_replays_the_first_answer(client, make_user, session):
    _, token = make_user()
    _, other_token = make_user()
    headers = {**auth(token), "Idempotency-Key": "upload-7f3a"}
    pdf = make_pdf(["once"])

    def send(data=pdf, headers=headers, **form):
        payload = {"file": (io.BytesIO(data), "once.pdf"), **form}
        return client.post("/api/documents", data=payload, headers=headers, content_type="multipart/form-data")

    first = send()
    again = send()
    assert first.status_code == again.status_code == 202
    assert first.json == again.json
    assert again.headers["Idempotent-Replayed"] == "true"
    assert stored(session)[0] == 1
    # The same key with another file, or another priority, is a client bug.
    different = send(make_pdf(["something else"]))
    assert different.status_code == 422 and "different request" in different.json["error"]
    assert send(priority="7").status_code == 422
    # Keys are per user.
    theirs = send(headers={**auth(other_token), "Idempotency-Key": "upload-7f3a"})
    assert theirs.status_code == 202 and theirs.json["id"] != first.json["id"]
    assert stored(session)[0] == 2
    # After 24 hours the key starts afresh.
    session.execute(sa.text("UPDATE idempotency_keys SET created_at = now() - interval '25 hours'"))
    session.commit()
    later = send()
    assert later.status_code == 202 and later.json["id"] not in (first.json["id"], theirs.json["id"])


def test_refused_upload_leaves_its_idempotency_key_free(client, make_user, session):
    _, token = make_user()
    headers = {**auth(token), "Idempotency-Key": "k1"}
    empty = {"file": (io.BytesIO(b""), "a.pdf")}
    assert client.post("/api/documents", data=empty, headers=headers).status_code == 400
    good = {"file": (io.BytesIO(make_pdf(["x"])), "a.pdf")}
    assert client.post("/api/documents", data=good, headers=headers).status_code == 202
    assert session.execute(sa.text("SELECT count(*) FROM idempotency_keys")).scalar() == 1


@pytest.mark.parametrize("key", ["", "x" * 256, "tab\there", "caf\u00e9"])
def test_bad_idempotency_keys_are_refused(client, make_user, session, key):
    _, token = make_user()
    response = upload(client, token)
    assert response.status_code == 202
    payload = {"file": (io.BytesIO(make_pdf(["x"])), "a.pdf")}
    response = client.post(
        "/api/documents",
        data=payload,
        headers={**auth(token), "Idempotency-Key": key.encode("utf-8").decode("latin-1")},
    )
    assert response.status_code == 400 and "Idempotency-Key" in response.json["error"]
    assert stored(session)[0] == 1
