"""The caller's own callback settings: the URL to POST to when a document ends, and the signing secret."""

from __future__ import annotations

from flask import Blueprint, g, jsonify, request

from docqueue.callbacks.signing import (
    SCHEME,
    SIGNATURE_HEADER,
    TOLERANCE_SECONDS,
    previous_secret_valid_until,
    rotate_secret,
)
from docqueue.callbacks.urls import CallbackUrlRejected, validate_callback_url
from docqueue.settings import get_settings
from web.auth import api_error, token_required
from web.extensions import db

bp = Blueprint("callbacks_api", __name__, url_prefix="/api")


def _settings():
    until = previous_secret_valid_until(g.user)
    return jsonify(
        callback_url=g.user.callback_url,
        secret=g.user.callback_secret,
        # After a rotation the old secret still signs (a second `v1=`) until then.
        previous_secret_valid_until=until.isoformat() if until else None,
        signature_header=SIGNATURE_HEADER,
        signature=SCHEME,
        tolerance_seconds=TOLERANCE_SECONDS,
    )


@bp.get("/me/callback")
@token_required
def callback_settings():
    """The caller's callback URL (used when an upload names none) and the secret that signs every POST."""
    return _settings()


@bp.put("/me/callback")
@token_required
def set_callback():
    """Set or clear (`null`) the caller's callback URL: JSON `{"callback_url": "https://..."}`."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or "callback_url" not in body:
        return api_error(400, 'send JSON {"callback_url": "https://..."} (null clears it)')
    raw = body["callback_url"]
    if raw is not None and not isinstance(raw, str):
        return api_error(400, "callback_url must be a string or null")
    try:
        g.user.callback_url = validate_callback_url(raw)
    except CallbackUrlRejected as rejection:
        return api_error(400, str(rejection))
    db.session.commit()
    return _settings()


@bp.post("/me/callback/rotate-secret")
@token_required
def rotate_callback_secret():
    """Give the caller a new signing secret; the old one still signs beside it for CALLBACK_SECRET_GRACE_HOURS."""
    rotate_secret(db.session, g.user, g.user, get_settings().callback_secret_grace_hours)
    db.session.commit()
    return _settings()
