"""Requests gunicorn refuses before the app sees them still get a JSON answer (issue 18): through the Procfile's
real gunicorn, over a raw socket, since an HTTP client library would refuse to send some of them."""

from __future__ import annotations

import json
import socket
from urllib.parse import urlsplit

import pytest

from tests.support.processes import start_web


def raw_request(base_url: str, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send `request` as is; the status, headers (lower-case names) and body of the answer."""
    address = urlsplit(base_url)
    with socket.create_connection((address.hostname, address.port), timeout=30) as connection:
        connection.sendall(request)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in header_lines)}
    return int(status_line.split()[1]), headers, body


@pytest.fixture
def web(procfile):
    return start_web(procfile, processes=1)


@pytest.mark.parametrize(
    "request_bytes, status, words",
    [
        # A request line past gunicorn's limit_request_line (4094 bytes).
        (b"GET /api/documents?q=" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "URI Too Long"),
        # A DEL byte in a header value.
        (b"GET /api/documents HTTP/1.1\r\nHost: x\r\nIdempotency-Key: a\x7fb\r\n\r\n", 400, "Idempotency-Key"),
        # A header past limit_request_field_size (8190 bytes).
        (b"GET /api/documents HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 9000 + b"\r\n\r\n", 431, "Too Large"),
    ],
    ids=["long-url", "del-in-header", "long-header"],
)
def test_a_request_gunicorn_refuses_is_answered_in_json(web, request_bytes, status, words):
    code, headers, body = raw_request(web, request_bytes)
    assert code == status
    assert headers["content-type"] == "application/json"
    assert int(headers["content-length"]) == len(body)
    error = json.loads(body)["error"]
    assert words.lower() in error.lower() and "<" not in error


def test_the_app_still_answers_ordinary_requests(web):
    code, headers, body = raw_request(web, b"GET /api/documents HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert code == 401 and headers["content-type"] == "application/json"
