"""The user's callback page: where their callbacks go, the secret that signs them, and rotating it."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_login import current_user, login_required

from docqueue.callbacks.signing import (
    SCHEME,
    SIGNATURE_HEADER,
    TOLERANCE_SECONDS,
    previous_secret_valid_until,
    rotate_secret,
)
from docqueue.settings import get_settings
from web.extensions import db

bp = Blueprint("callback_page", __name__)


@bp.get("/callbacks")
@login_required
def callback_settings():
    """The user's callback URL, signing secret and how to verify a signature."""
    return render_template(
        "callback_page/callbacks.html",
        scheme=SCHEME,
        header=SIGNATURE_HEADER,
        tolerance_seconds=TOLERANCE_SECONDS,
        grace_hours=get_settings().callback_secret_grace_hours,
        previous_until=previous_secret_valid_until(current_user),
    )


@bp.post("/callbacks/rotate-secret")
@login_required
def rotate_callback_secret():
    """Give the user a new signing secret (the old one keeps signing for the grace period); back to the page."""
    grace_hours = get_settings().callback_secret_grace_hours
    rotate_secret(db.session, current_user, current_user, grace_hours)
    db.session.commit()
    if grace_hours:
        flash(f"New secret made; the old one also signs every callback for {grace_hours} more hours.", "info")
    else:
        flash("New secret made; the old one no longer signs callbacks.", "info")
    return redirect(url_for("callback_page.callback_settings"))
