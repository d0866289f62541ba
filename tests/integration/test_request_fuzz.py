"""The API routes' parameters walked with Hypothesis: generated paths, queries, headers, form fields and files.

Whatever arrives, the answer is never a 5xx, every `/api` answer is JSON,
and a refused request leaves no row behind. Broad through Flask's test
client; then once more over real sockets against the Procfile's gunicorn.
"""

from __future__ import annotations

import io

import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.processes import start_web
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
