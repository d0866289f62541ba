"""Every route's parameters walked with Hypothesis: generated paths, queries, headers, form fields and files.

Whatever arrives, the answer is never a 5xx, every `/api` answer is JSON,
and a refused request leaves no row behind. Broad through Flask's test
client; then once more over real sockets against the Procfile's gunicorn.
"""

from __future__ import annotations

import io

import pytest
import requests
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import start_web
from tests.factories import make_pdf

FUZZ_SETTINGS = settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)

#: Text a header can carry: HTTP's field-value characters (RFC 9110: visible ASCII, space, latin-1 obs-text).
#: DEL and other controls make the request malformed HTTP, refused by gunicorn before any route is reached.
header_text = st.text(st.characters(min_codepoint=32, max_codepoint=255, exclude_characters="\x7f"), max_size=300)
#: Anything a form field or query value can carry, NUL and bidi overrides included.
any_text = st.one_of(
    st.text(max_size=300),
    st.sampled_from(
        ["", "-1", "0", "1", "24", "100", "101", "1e3", "abc", "\u00b2", "\x00", "\u202e"]
        + ["9223372036854775807", "9223372036854775808", "99999999999999999999", "failed", "pending", "retry"]
    ),
)
#: The query parameters the routes read, and some they do not.
query = st.dictionaries(
    st.sampled_from(
        [
            "limit",
            "after",
            "before",
            "hours",
            "q",
            "status",
            "stage",
            "operation",
            "user",
            "priority",
            "error",
            "window",
        ]
        + ["x", "\x00"]
    ),
    any_text,
    max_size=3,
)
path_segment = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.text(
        # No lone surrogates: no client can put them in a URL (they have no UTF-8 form).
        st.characters(min_codepoint=33, max_codepoint=0x10FFFF, exclude_characters="/?#%", exclude_categories=("Cs",)),
        min_size=1,
        max_size=30,
    ),
)
file_bytes = st.one_of(
    st.just(b""),
    st.binary(max_size=2000),
    st.just(make_pdf(["fuzz"])),
    st.binary(max_size=200).map(lambda junk: b"%PDF-1.7\n" + junk),
)
#: A part's Content-Type or file name: any text a header line can hold (a line break would end the header).
header_line_text = st.text(st.characters(exclude_characters="\r\n"), max_size=400)
file_part = st.tuples(file_bytes, header_line_text, st.one_of(st.none(), header_line_text))
#: A path's id: generated, or the fuzzing user's own document (so a route gets past its ownership check).
id_segment = st.one_of(path_segment, st.just("{own}"))

API_ROUTES = [
    ("POST", "/api/documents"),
    ("GET", "/api/documents"),
    ("GET", "/api/documents/{id}"),
    ("GET", "/api/documents/{id}/pages"),
    ("POST", "/api/documents/{id}/reprocess"),
    ("POST", "/api/documents/{id}/ocr"),
    ("GET", "/api/documents/{id}/searchable.pdf"),
    ("GET", "/api/documents/{id}/chunks"),
    ("GET", "/api/documents/{id}/images"),
    ("GET", "/api/documents/{id}/images/{id}"),
    ("GET", "/api/documents/{id}/enrichment"),
    ("GET", "/api/documents/{id}/callbacks"),
    ("GET", "/api/me/callback"),
    ("PUT", "/api/me/callback"),
    ("GET", "/api/queue/stats"),
    ("POST", "/api/queue/requeue-failed"),
    ("POST", "/api/queue/process"),
    ("GET", "/api/{id}"),
    ("PATCH", "/api/documents"),
]
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


def counts(engine) -> tuple:
    with engine.connect() as connection:
        return tuple(
            connection.execute(
                sa.text(
                    "SELECT (SELECT count(*) FROM documents), (SELECT count(*) FROM blob_chunks), "
                    "(SELECT count(*) FROM document_queue), (SELECT count(*) FROM idempotency_keys)"
                )
            ).one()
        )


@st.composite
def api_requests(draw):
    method, template = draw(st.sampled_from(API_ROUTES))
    path = with_ids(draw, template)
    query_args = draw(query)
    headers = {}
    if draw(st.booleans()):
        headers["Idempotency-Key"] = draw(header_text)
    if draw(st.booleans()):
        headers["HX-Request"] = draw(header_text)
    form = draw(st.dictionaries(st.sampled_from(["priority", "file", "callback_url", "x"]), any_text, max_size=2))
    files = draw(st.lists(file_part, max_size=3))
    token_kind = draw(st.sampled_from(["valid", "valid", "valid", "missing", "garbage"]))
    garbage = draw(header_text)
    return method, path, query_args, headers, form, files, token_kind, garbage


def with_ids(draw, template: str) -> str:
    """`template` with each `{id}` replaced by a drawn id segment (`{own}` stays, for the test to fill in)."""
    while "{id}" in template:
        template = template.replace("{id}", draw(id_segment), 1)
    return template


def _auth(token_kind: str, token: str, garbage: str) -> dict:
    if token_kind == "valid":
        return {"Authorization": f"Bearer {token}"}
    if token_kind == "garbage":
        return {"Authorization": garbage}
    return {}


def check_answer(status: int, is_json: bool, path: str, before: tuple, after: tuple) -> None:
    assert status < 500, f"{status} for {path}"
    if path.startswith("/api"):
        assert is_json, f"non-JSON answer {status} for {path}"
    if status >= 400:
        assert after == before, f"a refused request ({status}) stored rows: {before} -> {after}"


def own_document(session, user_id: int) -> int:
    """A document of the fuzzing user's, so that the routes taking one get past their ownership check."""
    from tests.factories import add_document

    return add_document(session, user_id, make_pdf(["mine"]))


def test_api_routes_never_answer_5xx_nor_store_on_refusal(client, make_user, session, test_env):
    from docqueue.db import get_engine

    engine = get_engine()
    user_id, token = make_user(role="admin")
    own = str(own_document(session, user_id))

    @FUZZ_SETTINGS
    @given(api_requests())
    def walk(request):
        method, path, query, headers, form, files, token_kind, garbage = request
        path = path.replace("{own}", own)
        data = dict(form)
        if files:
            data["file"] = [(io.BytesIO(content), name, kind) for content, name, kind in files]
        before = counts(engine)
        response = client.open(
            path,
            method=method,
            query_string=query,
            headers={**headers, **_auth(token_kind, token, garbage)},
            data=data if method in ("POST", "PATCH") else None,
            content_type="multipart/form-data" if method in ("POST", "PATCH") else None,
            json=form if method == "PUT" else None,
        )
        check_answer(response.status_code, response.is_json, path, before, counts(engine))

    walk()


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
        if path == "/upload":
            # All or nothing: every named file of the post, or none of them (an unnamed part is "no file chosen").
            assert stored_documents in (0, named), (stored_documents, files)
        elif path == "/upload/folder":
            assert 0 <= stored_documents <= named, (stored_documents, files)

    walk()


def test_real_gunicorn_never_answers_5xx_to_generated_requests(procfile, make_user, test_env):
    from docqueue.db import get_engine

    engine = get_engine()
    _, token = make_user(role="admin")
    base_url = start_web(procfile)
    http = requests.Session()

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(api_requests())
    def walk(request):
        method, path, query, headers, form, files, token_kind, garbage = request
        before = counts(engine)
        multipart = [("file", (name, content, kind)) for content, name, kind in files] if method != "GET" else None
        try:
            response = http.request(
                method,
                base_url + requests.utils.quote(path, safe="/"),
                params=query,
                headers={**headers, **_auth(token_kind, token, garbage)},
                data=form if method != "GET" else None,
                files=multipart or None,
                timeout=30,
            )
        except (UnicodeEncodeError, ValueError):
            return  # the client library refuses to send it: nothing reached the server
        is_json = response.headers.get("Content-Type", "").startswith("application/json")
        check_answer(response.status_code, is_json, path, before, counts(engine))

    walk()
