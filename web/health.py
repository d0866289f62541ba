"""`GET /healthz`: can this process reach Postgres and Redis?"""

from __future__ import annotations

import dramatiq
from flask import Blueprint, jsonify
from sqlalchemy import text

from web.extensions import db

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    """200 when both stores answer, 503 naming the one that does not."""
    checks = {}
    try:
        db.session.execute(text("SELECT 1"))
        checks["postgres"] = "ok"
    except Exception as error:
        checks["postgres"] = f"error: {type(error).__name__}"
    try:
        dramatiq.get_broker().client.ping()
        checks["redis"] = "ok"
    except Exception as error:
        checks["redis"] = f"error: {type(error).__name__}"
    healthy = all(value == "ok" for value in checks.values())
    return jsonify(status="ok" if healthy else "unavailable", checks=checks), 200 if healthy else 503
