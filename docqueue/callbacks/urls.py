"""Checking a callback URL someone gave us."""

from __future__ import annotations

from urllib.parse import urlsplit

MAX_URL_CHARS = 2048


class CallbackUrlRejected(ValueError):
    """The callback URL is not one docqueue will POST to; the message says why."""


def validate_callback_url(raw: str | None) -> str | None:
    """The URL to POST to (None when none was given); CallbackUrlRejected unless it is an absolute http(s) URL."""
    if raw is None or not raw.strip():
        return None
    url = raw.strip()
    if len(url) > MAX_URL_CHARS:
        raise CallbackUrlRejected(f"callback_url is longer than {MAX_URL_CHARS} characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises ValueError for a port out of range)
    except ValueError:
        raise CallbackUrlRejected("callback_url is not a valid URL") from None
    if parts.scheme not in ("http", "https"):
        raise CallbackUrlRejected("callback_url must start with http:// or https://")
    if not parts.hostname:
        raise CallbackUrlRejected("callback_url has no host")
    if any(ch.isspace() or ord(ch) < 32 for ch in url):
        raise CallbackUrlRejected("callback_url must not contain spaces or control characters")
    return url
