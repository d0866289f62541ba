"""Browser login (session cookie) and API bearer tokens."""

from __future__ import annotations

from functools import wraps

from flask import Blueprint, flash, g, jsonify, redirect, render_template, request, url_for
from flask_login import login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired

from docqueue.models import User
from docqueue.users import user_for_login, user_for_token
from web.extensions import db, login_manager

bp = Blueprint("auth", __name__)


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired()])
    password = PasswordField("Password", validators=[DataRequired()])


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    return db.session.get(User, int(user_id))


@bp.route("/login", methods=["GET", "POST"])
def login():
    form = LoginForm()
    if form.validate_on_submit():
        user = user_for_login(db.session, form.email.data, form.password.data)
        if user is not None:
            login_user(user, remember=True)
            return redirect(url_for("pages.index"))
        flash("Wrong email or password.", "error")
    return render_template("login.html", form=form), 200 if request.method == "GET" else 401


@bp.post("/logout")
def logout():
    logout_user()
    return redirect(url_for("auth.login"))


def api_error(status: int, message: str):
    """The JSON error body every API failure uses."""
    return jsonify(error=message), status


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


def admin_required(view):
    """Like `token_required`, and the user must be an admin."""

    @token_required
    @wraps(view)
    def wrapper(*args, **kwargs):
        if not g.user.is_admin:
            return api_error(403, "this endpoint is for admins")
        return view(*args, **kwargs)

    return wrapper
