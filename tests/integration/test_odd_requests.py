"""Odd API and upload requests a careless client or an attacker sends: each gets a clear answer, and nothing half-stored."""

from __future__ import annotations

import io

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from tests.support.api import auth, upload
from tests.support.factories import make_pdf
from tests.support.odd_requests import stored


def test_nul_in_filename_is_refused_with_the_reason(client, make_user, session):
    _, token = make_user()
    response = upload(client, token, filename="re\x00port.pdf")
    assert response.status_code == 400
    assert response.json == {"error": "the file name contains a NUL byte"}
    assert stored(session) == (0, 0, 0)


def test_overlong_part_content_type_is_refused(client, make_user, session):
    _, token = make_user()
    data = {"file": (io.BytesIO(make_pdf(["x"])), "a.pdf", "application/" + "x" * 300)}
    response = client.post("/api/documents", data=data, headers=auth(token), content_type="multipart/form-data")
    assert response.status_code == 400
    assert response.json["error"] == "the file's Content-Type is longer than 255 characters"
    assert stored(session) == (0, 0, 0)


def test_two_file_fields_are_refused_not_half_stored(client, make_user, session):
    _, token = make_user()
    data = {"file": [(io.BytesIO(make_pdf(["one"])), "one.pdf"), (io.BytesIO(make_pdf(["two"])), "two.pdf")]}
    response = client.post("/api/documents", data=data, headers=auth(token), content_type="multipart/form-data")
    assert response.status_code == 400
    assert "one file per request" in response.json["error"] and "2 'file' fields" in response.json["error"]
    assert stored(session) == (0, 0, 0)


def test_control_and_bidi_characters_are_stripped_from_the_name(client, make_user):
    _, token = make_user()
    response = upload(client, token, filename="invoice\u202efdp.exe\u200b\x07\u2028")
    assert response.status_code == 202
    detail = client.get(f"/api/documents/{response.json['id']}", headers=auth(token)).json
    assert detail["filename"] == "invoicefdp.exe"


def test_browser_upload_stores_each_file_on_its_own(app, make_user, session):
    make_user("form@example.com", password="pw")
    app.config.update(WTF_CSRF_ENABLED=False)
    client = app.test_client()
    assert client.post("/login", data={"email": "form@example.com", "password": "pw"}).status_code == 302
    files = [(io.BytesIO(make_pdf(["good"])), "good.pdf"), (io.BytesIO(make_pdf(["bad"])), "b\x00ad.pdf")]
    response = client.post("/upload", data={"files": files}, content_type="multipart/form-data", follow_redirects=True)
    assert response.status_code == 200
    # In the browser each file is its own upload: the bad name costs only its own file, and says why.
    assert b"bad.pdf: the file name contains a NUL byte<" in response.data
    assert b"nothing was stored" not in response.data
    assert stored(session)[0] == 1, "the good file is stored"
    # An empty file, found only while storing, refuses only itself too.
    files = [(io.BytesIO(make_pdf(["good two"])), "good2.pdf"), (io.BytesIO(b""), "empty.pdf")]
    response = client.post("/upload", data={"files": files}, content_type="multipart/form-data", follow_redirects=True)
    assert b"empty.pdf: the file is empty<" in response.data
    assert stored(session)[0] == 2


@pytest.mark.parametrize(
    "method, path, status",
    [
        ("get", "/api/no-such-thing", 404),
        ("get", "/api", 404),
        ("delete", "/api/documents", 405),
        ("put", "/api/queue/stats", 405),
        ("get", "/api/documents/-1", 404),
        ("get", "/api/documents/99999999999999999999", 404),
        ("get", "/api/documents/9223372036854775808/pages", 404),
        ("post", "/api/documents/99999999999999999999/reprocess", 404),
        ("get", "/api/documents?limit=-1", 400),
        ("get", "/api/documents?limit=abc", 400),
        ("get", "/api/documents?limit=0", 400),
        ("get", "/api/documents?limit=1001", 400),
        ("get", "/api/documents?limit=%C2%B2", 400),
        ("get", "/api/documents?limit=99999999999999999999999", 400),
    ],
)
def test_every_api_error_is_json(client, make_user, method, path, status):
    _, token = make_user()
    response = getattr(client, method)(path, headers=auth(token))
    assert response.status_code == status
    assert response.is_json and isinstance(response.json["error"], str) and response.json["error"]
    if status == 405:
        assert response.headers["Allow"]


def test_limit_errors_say_what_is_wrong(client, make_user):
    _, token = make_user()
    assert client.get("/api/documents?limit=abc", headers=auth(token)).json == {
        "error": "limit must be a whole number from 1 to 1000, got 'abc'"
    }
    assert client.get("/api/documents?limit=5", headers=auth(token)).status_code == 200


def test_a_crash_under_api_answers_json_without_detail(test_env, broker):
    from web import create_app

    app = create_app({"TESTING": False, "PROPAGATE_EXCEPTIONS": False})

    def crash():
        raise RuntimeError("SELECT secret FROM /tmp/docqueue-1-x")

    app.add_url_rule("/api/crash-for-test", "crash", crash)
    response = app.test_client().get("/api/crash-for-test")
    assert response.status_code == 500
    assert response.json == {"error": "internal server error; it has been logged"}


def test_upload_answer_needs_no_query_after_the_commit(app, client, make_user, session):
    """A Postgres restart right after the commit must not turn a stored upload into a 500 (and a retried duplicate)."""
    from web.extensions import db

    _, token = make_user()
    with app.app_context():
        engine = db.engine
    down = {"after_commit": False}

    def database_gone(conn, cursor, statement, parameters, context, executemany):
        if down["after_commit"]:
            import psycopg

            raise psycopg.OperationalError("server closed the connection unexpectedly")

    @event.listens_for(db.session, "after_commit")
    def restart_begins(_session):
        down["after_commit"] = True

    event.listen(engine, "before_cursor_execute", database_gone)
    try:
        response = upload(client, token)
    finally:
        event.remove(engine, "before_cursor_execute", database_gone)
        event.remove(db.session, "after_commit", restart_begins)
    assert response.status_code == 202, response.data
    assert response.json["status"] == "pending"
    assert session.execute(sa.text("SELECT id FROM documents")).scalar() == response.json["id"]
