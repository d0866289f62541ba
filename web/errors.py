"""Errors as answers: every `/api` answer is JSON, errors included, whichever part of Flask raised them.

Blueprint handlers never see an unknown path, a wrong method or a crash
outside a view, so these are registered on the app. Pages keep Flask's
own error pages. A crash's detail goes to the log and Sentry, never into
the answer.
"""

from __future__ import annotations

from flask import Flask, jsonify, request
from werkzeug.exceptions import ClientDisconnected, HTTPException, InternalServerError, RequestTimeout

from docqueue.settings import get_settings

INTERNAL_ERROR_MESSAGE = "internal server error; it has been logged"


def _is_api_request() -> bool:
    return request.path == "/api" or request.path.startswith("/api/")


def register_error_handlers(app: Flask) -> None:
    """Answer JSON `{"error": ...}` for every error under `/api`."""

    @app.errorhandler(TimeoutError)
    @app.errorhandler(ClientDisconnected)
    def body_stalled(error: Exception):
        # The body ended early, or the web worker's socket timeout (WEB_BODY_TIMEOUT_SECONDS) fired
        # while it was read (Werkzeug's form parser reports that as a disconnect).
        seconds = get_settings().web_body_timeout_seconds
        return http_error(
            RequestTimeout(f"the request body ended or paused for over {seconds} s before its end; nothing was stored")
        )

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        if not _is_api_request():
            return error
        if isinstance(error, InternalServerError):
            # Flask has already logged it and signalled Sentry (`got_request_exception`).
            message = INTERNAL_ERROR_MESSAGE
        else:
            message = error.description or error.name
        response = jsonify(error=message)
        response.status_code = error.code or 500
        for name, value in error.get_headers():
            if name.lower() != "content-type":  # e.g. `Allow` on a 405
                response.headers[name] = value
        return response
