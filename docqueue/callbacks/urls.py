"""Checking a callback URL someone gave us: its form, and that its host is one docqueue may send to."""

from __future__ import annotations

from urllib.parse import urlsplit

from docqueue.callbacks.addresses import AddressRefused, vetted_addresses
from docqueue.settings import get_settings

MAX_URL_CHARS = 2048


class CallbackUrlRejected(ValueError):
    """The callback URL is not one docqueue will POST to; the message says why."""


def default_port(scheme: str) -> int:
    """The port an http(s) URL without one means."""
    return 443 if scheme == "https" else 80


def validate_callback_url(raw: str | None) -> str | None:
    """The URL to POST to (None when none was given); CallbackUrlRejected unless docqueue may POST there.

    It must be an absolute http(s) URL without a user name or password, on a
    port from 1 to 65535, whose host resolves only to public addresses (or is
    allowed by CALLBACK_ALLOWED_HOSTS; see `addresses.py`).
    """
    if raw is None or not raw.strip():
        return None
    url = raw.strip()
    if len(url) > MAX_URL_CHARS:
        raise CallbackUrlRejected(f"callback_url is longer than {MAX_URL_CHARS} characters")
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError for a port out of range
    except ValueError:
        raise CallbackUrlRejected("callback_url is not a valid URL") from None
    if parts.scheme not in ("http", "https"):
        raise CallbackUrlRejected("callback_url must start with http:// or https://")
    if not parts.hostname:
        raise CallbackUrlRejected("callback_url has no host")
    if any(ch.isspace() or ord(ch) < 32 for ch in url):
        raise CallbackUrlRejected("callback_url must not contain spaces or control characters")
    if parts.username is not None or parts.password is not None:
        raise CallbackUrlRejected("callback_url must not contain a user name or password")
    if port == 0:
        raise CallbackUrlRejected("callback_url's port must be from 1 to 65535")
    try:
        vetted_addresses(parts.hostname, port or default_port(parts.scheme), get_settings().callback_allowed_hosts)
    except AddressRefused as refused:
        raise CallbackUrlRejected(f"callback_url cannot be used: {refused}") from None
    return url
