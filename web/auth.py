"""Browser login (session cookie), API bearer tokens, and the roles every view checks.

Roles (docqueue.statuses.ROLES) are checked on the server for each view:
`role_required` for pages, `api_role_required` for the API. A session's user
id carries the account's session version (`User.get_id`), so logging out,
a password change or disabling the account ends every session and
remember-me cookie of that account at once.
"""

from __future__ import annotations

from functools import wraps

from flask import Blueprint, abort, flash, g, jsonify, redirect, render_template, request, url_for
from flask_limiter import RateLimitExceeded
from flask_login import current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField
from wtforms.validators import DataRequired

from docqueue.accounts.users import end_all_sessions, user_for_login, user_for_session, user_for_token
from docqueue.models import User
from docqueue.settings import get_settings
from web.extensions import db, limiter, login_manager

bp = Blueprint("auth", __name__)


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired()])
    password = PasswordField("Password", validators=[DataRequired()])
    remember = BooleanField("Remember me")


@login_manager.user_loader
def load_user(session_user_id: str) -> User | None:
    return user_for_session(db.session, session_user_id)


def _login_limit() -> str:
    return f"{get_settings().login_failures_per_minute} per minute"


def _submitted_email() -> str:
    return (request.form.get("email") or "").strip().lower()[:320]


def _failed(response) -> bool:
    return response.status_code == 401


@bp.route("/login", methods=["GET", "POST"])
# Only failed attempts count, per client address and per email: guessing is slowed
# whichever one an attacker varies, and a user who types the password right is never held up.
@limiter.limit(_login_limit, methods=["POST"], deduct_when=_failed)
@limiter.limit(_login_limit, methods=["POST"], deduct_when=_failed, key_func=_submitted_email, scope="login-email")
def login():
    form = LoginForm()
    if form.validate_on_submit():
        user = user_for_login(db.session, form.email.data, form.password.data)
        if user is not None:
            login_user(user, remember=bool(form.remember.data))
            return redirect(local_path(request.args.get("next")) or url_for("pages.index"))
        flash("Wrong email or password.", "error")
    return render_template("auth/login.html", form=form), 200 if request.method == "GET" else 401


def local_path(target: str | None) -> str | None:
    """`target` if it is a path on this site, else None: a login never sends anyone off-site.

    Refuses what a browser would read as another host: `//host`, `/\\host`, and
    control characters, which browsers drop (`/<TAB>/host` becomes `//host`).
    """
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    return None if any(ord(character) < 0x20 or ord(character) == 0x7F for character in target) else target


@bp.app_errorhandler(RateLimitExceeded)
def too_many_attempts(error):
    """429 with the reason; the form stays usable once the minute has passed."""
    flash("Too many failed logins: wait a minute, then try again.", "error")
    return render_template("auth/login.html", form=LoginForm()), 429


@bp.post("/logout")
@login_required
def logout():
    """End every session of this account, here and elsewhere, remember-me cookies included."""
    end_all_sessions(db.session, current_user._get_current_object())
    db.session.commit()
    logout_user()
    return redirect(url_for("auth.login"))


def role_required(role: str):
    """Page decorator: the logged-in user must have `role` or a more powerful one, else 403."""

    def decorate(view):
        @wraps(view)
        @login_required
        def wrapper(*args, **kwargs):
            if not current_user.has_role(role):
                abort(403, description=f"this needs the {role} role")
            return view(*args, **kwargs)

        return wrapper

    return decorate


def api_error(status: int, message: str):
    """The JSON error body every API failure uses."""
    return jsonify(error=message), status


def bearer_user() -> User | None:
    """The enabled user whose token the request's `Authorization: Bearer` header carries, else None."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return user_for_token(db.session, token.strip())


def token_required(view):
    """Authenticate an API call by `Authorization: Bearer <token>`; the user lands in `g.user`."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return api_error(401, "missing API token: send 'Authorization: Bearer <token>'")
        user = user_for_token(db.session, token.strip())
        if user is None:
            return api_error(401, "invalid API token")
        g.user = user
        return view(*args, **kwargs)

    return wrapper


def api_role_required(role: str):
    """Like `token_required`, and the user must have `role` or a more powerful one."""

    def decorate(view):
        @token_required
        @wraps(view)
        def wrapper(*args, **kwargs):
            if not g.user.has_role(role):
                return api_error(403, f"this endpoint needs the {role} role")
            return view(*args, **kwargs)

        return wrapper

    return decorate
