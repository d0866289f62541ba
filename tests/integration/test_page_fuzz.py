"""Every page route's parameters walked with Hypothesis through Flask's test client, logged in as an admin.

Whatever arrives, the answer is never a 5xx, a refused request leaves no row
behind, and an upload stores all of its named files or none.
"""

from __future__ import annotations

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.request_fuzz import (
    FUZZ_SETTINGS,
    any_text,
    counts,
    file_part,
    header_text,
    own_document,
    query,
    with_ids,
)

#: Each page route with the form fields it reads.
PAGE_ROUTES = [
    ("GET", "/", []),
    ("POST", "/upload", ["priority"]),
    ("POST", "/upload/folder", ["priority"]),
    ("GET", "/login", []),
    ("POST", "/login", ["email", "password", "remember", "next"]),
    ("GET", "/documents/{id}", []),
    ("GET", "/documents/{id}/searchable.pdf", []),
    ("POST", "/documents/{id}/ocr", []),
    ("GET", "/documents/{id}/images/{id}", []),
    ("GET", "/admin", []),
    ("GET", "/admin/series.json", []),
    ("GET", "/admin/jobs", []),
    ("GET", "/admin/jobs/{id}", []),
    ("POST", "/admin/jobs/action", ["action", "job_id", "priority", "back"]),
    ("POST", "/admin/jobs/retry-matching", ["status", "stage", "operation", "user", "priority", "error", "window"]),
    ("POST", "/admin/jobs/retry-matching/confirm", ["token"]),
    ("GET", "/admin/documents/{id}", []),
    ("GET", "/admin/failures", []),
    ("POST", "/admin/failures/retry", ["stage", "error_message"]),
    ("POST", "/admin/failures/discard", ["stage", "error_message"]),
    ("POST", "/admin/queue/pause", []),
    ("POST", "/admin/queue/resume", []),
    ("POST", "/admin/queue/clear-completed", ["days"]),
    ("GET", "/admin/users", []),
    ("POST", "/admin/users", ["email", "password", "role"]),
    ("POST", "/admin/users/{id}/role", ["role"]),
    ("POST", "/admin/users/{id}/settings", ["concurrent_ocr_jobs", "ocr_timeout_seconds", "enable_background_ocr"]),
    ("GET", "/admin/ingests/", []),
    ("GET", "/admin/ingests/{id}/rejected.csv", []),
]


@pytest.fixture
def logged_in(app, make_user, session):
    """(a browser logged in as an admin, the id of a document of theirs)."""
    user_id, _ = make_user("fuzz@example.com", password="pw", role="admin")
    app.config.update(WTF_CSRF_ENABLED=False)
    client = app.test_client()
    assert client.post("/login", data={"email": "fuzz@example.com", "password": "pw"}).status_code == 302
    return client, str(own_document(session, user_id))


@st.composite
def page_requests(draw):
    method, template, fields = draw(st.sampled_from(PAGE_ROUTES))
    form = draw(st.dictionaries(st.sampled_from([*fields, "x"]), any_text, max_size=len(fields) + 1))
    if draw(st.booleans()):
        form["job_id"] = draw(st.lists(any_text, max_size=3))
    files = draw(st.lists(file_part, max_size=3))
    headers = draw(
        st.dictionaries(st.sampled_from(["HX-Request", "Referer", "X-Forwarded-For"]), header_text, max_size=2)
    )
    return method, with_ids(draw, template), draw(query), form, files, headers


def test_page_routes_never_answer_5xx_nor_store_on_refusal(logged_in, test_env):
    from docqueue.db import get_engine

    engine = get_engine()
    browser, own = logged_in

    @settings(FUZZ_SETTINGS, max_examples=300)
    @given(page_requests())
    def walk(request):
        method, path, query_args, form, files, headers = request
        path = path.replace("{own}", own)
        data = dict(form)
        file_field = {"/upload": "files", "/upload/folder": "folder"}.get(path)
        if files and file_field:
            data[file_field] = [(io.BytesIO(content), name, kind) for content, name, kind in files]
        before = counts(engine)
        response = browser.open(
            path,
            method=method,
            query_string=query_args,
            headers=headers,
            data=data if method == "POST" else None,
            content_type="multipart/form-data" if method == "POST" else None,
        )
        assert response.status_code < 500, (method, path, query_args, form)
        after = counts(engine)
        if response.status_code >= 400:
            assert after == before, f"a refused request ({response.status_code}) stored rows: {before} -> {after}"
        named = sum(1 for _, name, _ in files if name) if file_field and method == "POST" else 0
        stored_documents = after[0] - before[0]
        if path in ("/upload", "/upload/folder"):
            # In the browser each file is its own upload: the good ones are stored, never more than were named
            # (an unnamed part is "no file chosen").
            assert 0 <= stored_documents <= named, (stored_documents, files)

    walk()
