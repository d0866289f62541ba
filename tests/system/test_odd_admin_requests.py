"""Odd requests to the admin and browser pages: huge ids, bad query and form values, unwritable folder file names."""

from __future__ import annotations

import html
import io

import pytest
import sqlalchemy as sa

from tests.support.api import auth
from tests.support.factories import make_pdf
from tests.support.odd_requests import stored

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
    from tests.support.factories import add_document

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
