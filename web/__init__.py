"""The Flask app: upload pages, the admin pages, the JSON API, metrics, health checks. Built by `create_app`."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from flask import Flask

from docqueue.broker import build_broker
from docqueue.connections import ProcessRole, configure_engine, engine_options
from docqueue.queue.backlog import TimingsCache
from docqueue.queue.dashboard import SnapshotCache
from docqueue.settings import SettingsError, get_settings
from web.dispatch_waker import install_dispatch_waker
from web.extensions import csrf, db, limiter, login_manager, migrate
from web.json_body import DepthLimitedJSONProvider
from web.params import IdConverter
from web.request_body import LargeBodyReads
from web.security import init_security

ROOT = Path(__file__).resolve().parent.parent


def limits_storage_uri(redis_url: str) -> str:
    """The Redis URL in the form the `limits` package wants: it spells a Unix socket (embedded Redis) `redis+unix://`."""
    return "redis+unix://" + redis_url.removeprefix("unix://") if redis_url.startswith("unix://") else redis_url


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
        SQLALCHEMY_ENGINE_OPTIONS={"pool_pre_ping": True, **engine_options(ProcessRole.WEB, settings)},
        MAX_CONTENT_LENGTH=settings.max_upload_bytes,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        # "Remember me" (a checkbox): a cookie carrying the session version, so logging out voids copies.
        REMEMBER_COOKIE_DURATION=timedelta(days=settings.remember_days),
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SAMESITE="Lax",
        WTF_CSRF_TIME_LIMIT=None,
        RATELIMIT_STORAGE_URI=limits_storage_uri(settings.require_redis_url()),
        # Under the broker's namespace, so a shared Redis keeps apps (and test runs) apart.
        RATELIMIT_STORAGE_OPTIONS={"key_prefix": f"{settings.redis_namespace}:limits"},
        RATELIMIT_HEADERS_ENABLED=True,
        # Redis down must not lock everyone out: logins then go unthrottled (and it is logged).
        RATELIMIT_SWALLOW_ERRORS=True,
    )
    if test_config:
        app.config.update(test_config)
    app.json = DepthLimitedJSONProvider(app)  # a deeply nested body is a 400, not a RecursionError
    app.url_map.converters["id"] = IdConverter  # `<id:...>` in every route that takes a row id

    init_security(app, settings)
    app.wsgi_app = LargeBodyReads(app.wsgi_app)
    db.init_app(app)
    with app.app_context():
        configure_engine(db.engine, settings)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"))
    csrf.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    limiter.init_app(app)
    app.extensions["dashboard_snapshot"] = SnapshotCache(max_age=2.0)
    app.extensions["stage_timings"] = TimingsCache(max_age=30.0)
    install_dispatch_waker(app)
    build_broker()

    from web import (
        api,
        auth,
        callback_page,
        callbacks_api,
        document_images,
        document_pages,
        folder_upload,
        health,
        ingest_admin,
        metrics,
        pages,
        results_api,
    )
    from web.admin import bp as admin_bp
    from web.errors import register_error_handlers
    from web.unavailable import register_unavailable_handler

    app.register_blueprint(auth.bp)
    app.register_blueprint(pages.bp)
    app.register_blueprint(admin_bp)
    app.register_blueprint(document_pages.bp)
    app.register_blueprint(document_images.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(results_api.bp)
    app.register_blueprint(callbacks_api.bp)
    app.register_blueprint(callback_page.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(metrics.bp)
    app.register_blueprint(folder_upload.bp)
    app.register_blueprint(ingest_admin.bp)
    csrf.exempt(api.bp)
    register_error_handlers(app)
    csrf.exempt(results_api.bp)
    csrf.exempt(callbacks_api.bp)
    csrf.exempt(metrics.bp)
    register_unavailable_handler(app)
    return app
