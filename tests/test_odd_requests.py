"""Odd requests a careless client or an attacker sends: each gets a clear answer, and nothing half-stored."""

from __future__ import annotations

import html
import io

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from tests.factories import make_pdf
from tests.test_api import auth, upload


def stored(session) -> tuple[int, int, int]:
    """(documents, blob chunks, queue items) in the database."""
    session.rollback()
    row = session.execute(
        sa.text(
            "SELECT (SELECT count(*) FROM documents), (SELECT count(*) FROM blob_chunks), "
            "(SELECT count(*) FROM document_queue)"
        )
    ).one()
    return tuple(row)


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


def test_browser_upload_is_all_or_nothing(app, make_user, session):
    make_user("form@example.com", password="pw")
    app.config.update(WTF_CSRF_ENABLED=False)
    client = app.test_client()
    assert client.post("/login", data={"email": "form@example.com", "password": "pw"}).status_code == 302
    files = [(io.BytesIO(make_pdf(["good"])), "good.pdf"), (io.BytesIO(make_pdf(["bad"])), "b\x00ad.pdf")]
    response = client.post("/upload", data={"files": files}, content_type="multipart/form-data", follow_redirects=True)
    assert response.status_code == 200
    assert b"the file name contains a NUL byte; nothing was stored" in response.data
    assert stored(session) == (0, 0, 0), "the good file must not be stored before the bad one is refused"
    # An empty file, found only while storing, also rolls back the good one beside it.
    files = [(io.BytesIO(make_pdf(["good"])), "good.pdf"), (io.BytesIO(b""), "empty.pdf")]
    response = client.post("/upload", data={"files": files}, content_type="multipart/form-data", follow_redirects=True)
    assert b"empty.pdf: the file is empty; nothing was stored" in response.data
    assert stored(session) == (0, 0, 0)
    # The user's retry without the bad file stores the good one once.
    files = [(io.BytesIO(make_pdf(["good"])), "good.pdf")]
    client.post("/upload", data={"files": files}, content_type="multipart/form-data")
    assert stored(session)[0] == 1


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


#: Beyond the BIGINT range of every id column.
HUGE = "99999999999999999999"
ID_ROUTES = [
    ("get", "/admin/documents/{huge}"),
    ("get", "/admin/jobs/{huge}"),
    ("post", "/admin/users/{huge}/disable"),
    ("get", "/admin/ingests/{huge}/rejected.csv"),
    ("get", "/documents/{huge}"),
    ("get", "/documents/{huge}/searchable.pdf"),
    ("post", "/documents/{huge}/ocr"),
    ("get", "/documents/{own}/images/{huge}"),
    ("get", "/api/documents/{huge}"),
    ("get", "/api/documents/{huge}/chunks"),
    ("get", "/api/documents/{huge}/images"),
    ("get", "/api/documents/{own}/images/{huge}"),
    ("get", "/api/documents/{huge}/enrichment"),
    ("get", "/api/documents/{huge}/callbacks"),
]


@pytest.fixture
def admin_browser(app, make_user):
    """(a logged-in browser, an API token, a document of theirs) for an admin."""
    from tests.factories import add_document

    user_id, token = make_user("odd-admin@example.com", password="pw", role="admin")
    app.config.update(WTF_CSRF_ENABLED=False)
    browser = app.test_client()
    assert browser.post("/login", data={"email": "odd-admin@example.com", "password": "pw"}).status_code == 302
    from docqueue.db import session_scope

    with session_scope() as session:
        document_id = add_document(session, user_id, make_pdf(["mine"]))
    return browser, token, document_id


@pytest.mark.parametrize("huge", [HUGE, str(2**63), str(2**63 - 1)])
@pytest.mark.parametrize("method, template", ID_ROUTES)
def test_an_id_beyond_the_integer_range_is_not_found(admin_browser, method, template, huge):
    browser, token, document_id = admin_browser
    path = template.format(huge=huge, own=document_id)
    response = getattr(browser, method)(path, headers=auth(token))
    assert response.status_code == 404, (path, response.status_code)
    assert response.is_json == path.startswith("/api/")


@pytest.mark.parametrize(
    "path, message",
    [
        ("/admin/jobs?before=abc", "before must be a whole number from 1 to 9223372036854775807, got 'abc'"),
        (f"/admin/jobs?before={HUGE}", f"before must be a whole number from 1 to 9223372036854775807, got '{HUGE}'"),
        ("/admin/jobs?before=0", "before must be a whole number from 1 to 9223372036854775807, got 0"),
        ("/admin/series.json?hours=abc", "hours must be one of 1, 24, got 'abc'"),
        ("/admin/series.json?hours=2", "hours must be one of 1, 24, got '2'"),
    ],
)
def test_a_wrong_admin_query_value_is_refused_with_what_is_wrong(admin_browser, path, message):
    browser, _, _ = admin_browser
    response = browser.get(path)
    assert response.status_code == 400
    assert message in html.unescape(response.get_data(as_text=True))


def test_right_admin_query_values_still_work(admin_browser):
    browser, _, _ = admin_browser
    assert browser.get("/admin/jobs?before=5").status_code == 200
    assert browser.get("/admin/series.json?hours=24").json


def folder_upload(browser, files: list[tuple[str, bytes]]):
    data = {"folder": [(io.BytesIO(content), name) for name, content in files]}
    return browser.post("/upload/folder", data=data, content_type="multipart/form-data", follow_redirects=True)


def test_a_folder_file_name_over_255_bytes_is_cut_by_bytes_not_characters(admin_browser, session):
    browser, _, _ = admin_browser
    name = "é" * 200 + ".pdf"  # 200 characters, 404 bytes
    page = folder_upload(browser, [(f"dir/{name}", make_pdf(["long name"]))])
    assert page.status_code == 200
    assert "Folder imported: 1 file queued" in page.get_data(as_text=True)
    stored_name = session.execute(sa.text("SELECT filename FROM documents ORDER BY id DESC LIMIT 1")).scalar()
    assert stored_name.endswith(".pdf") and len(stored_name.encode()) <= 255 and stored_name.startswith("ééé")


@pytest.mark.parametrize(
    "bad_name, reason",
    [
        ("dir/b\x00ad.pdf", "the file name contains a NUL byte; nothing was stored"),
        (
            "/".join(["d" * 250] * 16) + "/deep.pdf",
            "bytes long, over the 3840 a folder path may be; nothing was stored",
        ),
    ],
)
def test_a_folder_file_name_that_cannot_be_written_refuses_the_upload_with_the_reason(
    admin_browser, session, bad_name, reason
):
    browser, _, _ = admin_browser
    before = stored(session)
    page = folder_upload(browser, [("dir/good.pdf", make_pdf(["good"])), (bad_name, make_pdf(["bad"]))])
    assert page.status_code == 200
    assert reason in html.unescape(page.get_data(as_text=True))
    assert stored(session) == before


@pytest.mark.parametrize(
    "method, path, form, status",
    [
        # Python's int() takes "²" as a digit, Postgres takes no NUL in text, nor "" as a UUID.
        ("get", "/admin/jobs?priority=%C2%B2", None, 400),
        ("post", "/admin/jobs/retry-matching", {"priority": "²"}, 400),
        ("post", "/admin/jobs/action", {"action": "retry", "job_id": "²"}, 400),
        ("post", "/admin/jobs/action", {"action": "priority", "job_id": "1", "priority": "²"}, 400),
        ("post", "/admin/queue/clear-completed", {"days": "²"}, 400),
        ("post", "/admin/failures/retry", {"stage": "ocr", "error_message": "\x00"}, 400),
        ("post", "/admin/failures/discard", {"stage": "\x00", "error_message": ""}, 400),
        ("post", "/admin/jobs/retry-matching/confirm", {"token": "not-a-uuid"}, 302),
        ("post", "/admin/users", {"email": "a\x00@example.com", "password": "pw", "role": "viewer"}, 302),
        ("post", "/login", {"email": "a\x00@example.com", "password": "pw"}, 401),
        ("get", "/?q=%00", None, 302),
    ],
)
def test_odd_form_and_query_values_are_refused_not_crashed_on(admin_browser, session, method, path, form, status):
    browser, _, _ = admin_browser
    before = session.execute(sa.text("SELECT count(*) FROM users")).scalar()
    response = getattr(browser, method)(path, data=form)
    assert response.status_code == status, response.get_data(as_text=True)[-300:]
    session.rollback()
    assert session.execute(sa.text("SELECT count(*) FROM users")).scalar() == before
