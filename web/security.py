"""What every response and request of the web gets: headers, Secure cookies over HTTPS, CSRF errors, throttling.

- Security headers on every response: a CSP that allows only our own files
  (no inline script or style anywhere in the templates), no framing,
  no MIME sniffing, and no referrer leaving the site.
- Cookies are `Secure` whenever the request came over HTTPS; behind a proxy
  that terminates TLS, PROXY_HOPS says how many proxies' X-Forwarded-*
  headers to believe.
- A failed CSRF check answers 400 with the reason, as JSON under /api.
"""

from __future__ import annotations

from flask import Flask, jsonify, render_template, request
from flask.sessions import SecureCookieSessionInterface
from flask_wtf.csrf import CSRFError
from werkzeug.middleware.proxy_fix import ProxyFix

from docqueue.settings import Settings
from web.htmx import is_htmx

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}


class SessionCookieSecureOverHttps(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, marked `Secure` when the request came over HTTPS."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return super().get_cookie_secure(app) or request.is_secure


def add_security_headers(response):
    """Every response: the headers above; HSTS too over HTTPS; `Secure` on every cookie set over HTTPS."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if request.is_secure:
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        cookies = response.headers.getlist("Set-Cookie")
        if cookies:
            response.headers.remove("Set-Cookie")
            for cookie in cookies:
                response.headers.add("Set-Cookie", cookie if "; Secure" in cookie else f"{cookie}; Secure")
    return response


def csrf_refused(error: CSRFError):
    """A mutating request without a valid CSRF token: 400 and the reason."""
    message = f"refused: {error.description} Reload the page and try again."
    if request.path.startswith("/api/") or is_htmx():
        return jsonify(error=message), 400
    return render_template("error.html", title="Request refused", message=message), 400


def init_security(app: Flask, settings: Settings) -> None:
    """Install the above on `app`. Call before other extensions register their after-request hooks.

    Flask runs after-request hooks in reverse order of registration, so the
    header hook registered first sees the remember cookie Flask-Login adds.
    """
    if settings.proxy_hops:
        hops = settings.proxy_hops
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops)
    app.session_interface = SessionCookieSecureOverHttps()
    app.after_request(add_security_headers)
    app.register_error_handler(CSRFError, csrf_refused)
