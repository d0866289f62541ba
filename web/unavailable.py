"""503 with Retry-After while the database cannot be reached (a restart, a failover).

Without this a lost database connection reaches the user as Flask's HTML
500 page; a client should instead wait a moment and try again, which is
what the Retry-After header tells it. API calls get JSON, pages a short text.
"""

from __future__ import annotations

from flask import Flask, jsonify, request
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from web.extensions import db

#: Seconds a client should wait: a database restart or failover usually takes a few.
RETRY_AFTER_SECONDS = 5


def register_unavailable_handler(app: Flask) -> None:
    """Answer 503 + Retry-After for any request that failed because the database is unreachable, or every
    connection of this process's budget (DB_WEB_CONNECTIONS) stayed busy for DB_POOL_TIMEOUT_SECONDS."""

    @app.errorhandler(OperationalError)
    @app.errorhandler(InterfaceError)
    @app.errorhandler(PoolTimeout)
    def database_unavailable(error):
        db.session.remove()  # its connection is broken: the next request starts a fresh one
        message = "the database is unavailable for a moment: try again shortly"
        if request.path.startswith("/api/"):
            response = jsonify(error=message)
            response.status_code = 503
        else:
            response = app.response_class(message, status=503, mimetype="text/plain")
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
