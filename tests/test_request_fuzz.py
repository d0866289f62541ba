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
    st.sampled_from(["", "-1", "0", "1", "100", "101", "1e3", "abc", "99999999999999999999", "\x00", "\u202e"]),
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

API_ROUTES = [
    ("POST", "/api/documents"),
    ("GET", "/api/documents"),
    ("GET", "/api/documents/{id}"),
    ("GET", "/api/documents/{id}/pages"),
    ("POST", "/api/documents/{id}/reprocess"),
    ("GET", "/api/queue/stats"),
    ("POST", "/api/queue/requeue-failed"),
    ("POST", "/api/queue/process"),
    ("GET", "/api/{id}"),
    ("PATCH", "/api/documents"),
]
PAGE_ROUTES = [("GET", "/"), ("POST", "/upload"), ("GET", "/login"), ("POST", "/login"), ("POST", "/logout")]


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
    path = template.replace("{id}", draw(path_segment))
    query = draw(st.dictionaries(st.sampled_from(["limit", "page", "x", "\x00"]), any_text, max_size=2))
    headers = {}
    if draw(st.booleans()):
        headers["Idempotency-Key"] = draw(header_text)
    if draw(st.booleans()):
        headers["HX-Request"] = draw(header_text)
    form = draw(st.dictionaries(st.sampled_from(["priority", "file", "x"]), any_text, max_size=2))
    files = draw(st.lists(file_part, max_size=3))
    token_kind = draw(st.sampled_from(["valid", "valid", "valid", "missing", "garbage"]))
    garbage = draw(header_text)
    return method, path, query, headers, form, files, token_kind, garbage


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


def test_api_routes_never_answer_5xx_nor_store_on_refusal(client, make_user, test_env):
    from docqueue.db import get_engine

    engine = get_engine()
    _, token = make_user(role="admin")

    @FUZZ_SETTINGS
    @given(api_requests())
    def walk(request):
        method, path, query, headers, form, files, token_kind, garbage = request
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
        )
        check_answer(response.status_code, response.is_json, path, before, counts(engine))

    walk()


@pytest.fixture
def logged_in(app, make_user):
    make_user("fuzz@example.com", password="pw")
    app.config.update(WTF_CSRF_ENABLED=False)
    client = app.test_client()
    assert client.post("/login", data={"email": "fuzz@example.com", "password": "pw"}).status_code == 302
    return client


def test_page_routes_never_answer_5xx_nor_store_on_refusal(logged_in, test_env):
    from docqueue.db import get_engine

    engine = get_engine()

    @FUZZ_SETTINGS
    @given(
        st.sampled_from(PAGE_ROUTES),
        st.dictionaries(st.sampled_from(["priority", "email", "password", "files", "next"]), any_text, max_size=3),
        st.lists(file_part, max_size=3),
        st.dictionaries(st.sampled_from(["HX-Request", "Referer", "X-Forwarded-For"]), header_text, max_size=2),
    )
    def walk(route, form, files, headers):
        method, path = route
        if path == "/logout":
            return  # it would end the session the other examples need
        data = dict(form)
        if files and path == "/upload":
            data["files"] = [(io.BytesIO(content), name, kind) for content, name, kind in files]
        before = counts(engine)
        response = logged_in.open(
            path,
            method=method,
            headers=headers,
            data=data if method == "POST" else None,
            content_type="multipart/form-data" if method == "POST" else None,
        )
        assert response.status_code < 500, (route, form)
        # All or nothing: every named file of the post, or none of them (an unnamed part is "no file chosen").
        stored_documents = counts(engine)[0] - before[0]
        named = sum(1 for _, name, _ in files if name) if path == "/upload" and method == "POST" else 0
        assert stored_documents in (0, named), (stored_documents, files)

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
