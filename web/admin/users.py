"""Accounts (admins only): create, role, disable/enable, reset the API token, per-user settings."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from docqueue.accounts.management import (
    MAX_QUOTA,
    QUOTAS,
    USE_DEFAULT,
    UnknownUser,
    UserSettings,
    add_user,
    find_user,
    list_users,
    reset_token,
    set_disabled,
    set_role,
    update_settings,
)
from docqueue.accounts.users import UserExists
from docqueue.settings import get_settings
from docqueue.statuses import ROLES
from web.admin.blueprint import bp
from web.admin.common import form_int
from web.auth import role_required
from web.extensions import db


@bp.get("/users")
@role_required("admin")
def users():
    settings = get_settings()
    defaults = {
        "storage_quota_mb": settings.default_storage_quota_mb,
        "daily_page_quota": settings.default_daily_page_quota,
    }
    return render_template("admin/users.html", users=list_users(db.session), roles=ROLES, quota_defaults=defaults)


@bp.post("/users")
@role_required("admin")
def create_user():
    email, password, role = (
        request.form.get("email", ""),
        request.form.get("password", ""),
        request.form.get("role", ""),
    )
    try:
        user, token = add_user(db.session, current_user, email, password, role)
        db.session.commit()
    except (UserExists, ValueError) as error:
        db.session.rollback()
        flash(str(error), "error")
        return redirect(url_for("admin.users"))
    flash(f"Created {user.email} ({role}). API token, shown this once: {token}", "token")
    return redirect(url_for("admin.users"))


def _user(user_id: int):
    try:
        return find_user(db.session, user_id)
    except UnknownUser as error:
        abort(404, description=str(error))


@bp.post("/users/<id:user_id>/<any(disable, enable, 'reset-token', role, settings):verb>")
@role_required("admin")
def change_user(user_id: int, verb: str):
    user = _user(user_id)
    try:
        if verb in ("disable", "enable"):
            set_disabled(db.session, current_user, user, verb == "disable")
            message = f"{user.email} is {verb}d."
        elif verb == "reset-token":
            token = reset_token(db.session, current_user, user)
            message = f"New API token for {user.email}, shown this once: {token}"
        elif verb == "role":
            set_role(db.session, current_user, user, request.form.get("role", ""))
            message = f"{user.email} is now {user.role}."
        else:
            update_settings(db.session, current_user, user, _settings_from_form())
            message = f"Saved {user.email}'s settings."
        db.session.commit()
    except ValueError as error:
        db.session.rollback()
        flash(str(error), "error")
        return redirect(url_for("admin.users"))
    flash(message, "token" if verb == "reset-token" else "info")
    return redirect(url_for("admin.users"))


def _settings_from_form() -> UserSettings:
    return UserSettings(
        concurrent_ocr_jobs=form_int("concurrent_ocr_jobs", 0, 1000),
        ocr_timeout_seconds=form_int("ocr_timeout_seconds", 1, 86400),
        enable_background_ocr=request.form.get("enable_background_ocr") == "on",
        **{name: _form_quota(name) for name in QUOTAS},
    )


def _form_quota(name: str) -> int | None:
    """A quota field: left out, unchanged; blank, back to the setting's default; else a whole number."""
    if name not in request.form:
        return None
    if not request.form[name].strip():
        return USE_DEFAULT
    return form_int(name, 0, MAX_QUOTA)
