"""The Flask app: upload pages, the JSON API, health checks. Built by `create_app`."""

from __future__ import annotations

from pathlib import Path

from flask import Flask

from docqueue.broker import build_broker
from docqueue.settings import SettingsError, get_settings
from web.extensions import csrf, db, login_manager, migrate

ROOT = Path(__file__).resolve().parent.parent


def create_app(test_config: dict | None = None) -> Flask:
    """Application factory: `gunicorn "web:create_app()"`, `flask --app web ...`."""
    settings = get_settings()
    app = Flask(
        __name__,
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    if not settings.secret_key and not (test_config or {}).get("SECRET_KEY"):
        raise SettingsError("SECRET_KEY is not set: sessions and CSRF tokens need it")
    app.config.from_mapping(
        SECRET_KEY=settings.secret_key,
        SQLALCHEMY_DATABASE_URI=settings.require_database_url(),
        SQLALCHEMY_ENGINE_OPTIONS={"pool_pre_ping": True},
        MAX_CONTENT_LENGTH=settings.max_upload_bytes,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        WTF_CSRF_TIME_LIMIT=None,
    )
    if test_config:
        app.config.update(test_config)

    db.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"))
    csrf.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    build_broker()

    from web import api, auth, health, pages
    from web.unavailable import register_unavailable_handler

    app.register_blueprint(auth.bp)
    app.register_blueprint(pages.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(health.bp)
    csrf.exempt(api.bp)
    register_unavailable_handler(app)
    return app
