"""Large request bodies reach the app whole through the buffered reader, and a body cut short still shows as one."""

from __future__ import annotations

import hashlib
import io
import os

import pytest
from flask import Flask, request
from werkzeug.exceptions import ClientDisconnected
from werkzeug.test import EnvironBuilder

from web.request_body import BODY_READ_BYTES, PARSER_READ_BYTES, LargeBodyReads


def receiving_app() -> Flask:
    app = Flask(__name__)
    app.wsgi_app = LargeBodyReads(app.wsgi_app)

    @app.post("/upload")
    def upload():
        stored = request.files["file"].read()
        return {
            "sha256": hashlib.sha256(stored).hexdigest(),
            "note": request.form["note"],
            "buffered": isinstance(request.environ["wsgi.input"], io.BufferedReader),
        }

    return app


@pytest.mark.parametrize("size", [10, PARSER_READ_BYTES + 1, 3 * BODY_READ_BYTES + 12345])
def test_a_multipart_body_arrives_whole(size):
    data = os.urandom(size)
    answer = (
        receiving_app()
        .test_client()
        .post("/upload", data={"file": (io.BytesIO(data), "a.pdf"), "note": "after the file"})
        .json
    )
    assert answer == {
        "sha256": hashlib.sha256(data).hexdigest(),
        "note": "after the file",
        "buffered": size > PARSER_READ_BYTES,
    }


class StallingBody(io.BytesIO):
    """The first half of a body, then the socket timeout of a client that stopped sending."""

    def read(self, size=-1):
        data = super().read(size)
        if not data:
            raise TimeoutError("timed out")
        return data


@pytest.mark.parametrize("stream", [io.BytesIO, StallingBody], ids=["ended", "stalled"])
def test_a_body_cut_short_is_a_disconnect(stream):
    builder = EnvironBuilder(
        method="POST", path="/upload", data={"file": (io.BytesIO(os.urandom(BODY_READ_BYTES)), "a.pdf"), "note": ""}
    )
    environ = builder.get_environ()
    body = environ["wsgi.input"].read()
    environ["wsgi.input"] = stream(body[: len(body) // 2])
    app = receiving_app()
    app.register_error_handler(ClientDisconnected, lambda error: ("cut short", 408))
    statuses = []
    answer = b"".join(app.wsgi_app(environ, lambda status, headers: statuses.append(status)))
    assert (statuses, answer) == (["408 REQUEST TIMEOUT"], b"cut short")
