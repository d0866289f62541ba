"""How a setting is read from the environment and checked: whole numbers, choices, lists, URLs.

`docqueue/settings.py` declares every setting and names the variable each is read from; the readers
here take that name first and raise SettingsError, naming it, for a value they refuse.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit


class SettingsError(RuntimeError):
    """A setting is missing or malformed; the message names it."""


def read_int(name: str, default: int, minimum: int = 0) -> int:
    """Variable `name` as a whole number of at least `minimum`; `default` when unset or empty."""
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{name} must be at least {minimum}, got {value}")
    return value


def read_languages(name: str, default: str) -> str:
    """Variable `name` (else `default`) as Tesseract's language list: codes joined by '+'."""
    raw = os.environ.get(name) or default
    # Handed to Tesseract as its language list: codes joined by '+', nothing else.
    if not re.fullmatch(r"[A-Za-z0-9_]+(\+[A-Za-z0-9_]+)*", raw):
        raise SettingsError(f"{name} must be Tesseract language codes joined by '+' (e.g. eng+deu), got {raw!r}")
    return raw


def read_choice(name: str, choices: tuple[str, ...]) -> str:
    """Variable `name`, lower-cased, which must be one of `choices` (unset reads as "")."""
    value = os.environ.get(name, "").strip().lower()
    if value not in choices:
        allowed = ", ".join(repr(choice) for choice in choices if choice)
        raise SettingsError(f"{name} must be one of {allowed} (or unset), got {value!r}")
    return value


def read_worker_connections(name: str, worker_threads: int) -> int:
    """Variable `name` as a worker process's connection pool size: more than its `worker_threads`."""
    value = read_int(name, worker_threads + 2, minimum=2)
    if value <= worker_threads:
        # Each thread may hold two at once (a reader and a batch writer): fewer than threads + 1 can deadlock.
        raise SettingsError(f"{name} must be more than WORKER_THREADS ({worker_threads}), got {value}")
    return value


def read_allowed_hosts(name: str) -> tuple[str, ...]:
    """Host names, addresses and networks (CIDR) an operator lets callbacks reach despite being internal."""
    entries = tuple(entry.strip().lower() for entry in os.environ.get(name, "").split(",") if entry.strip())
    for entry in entries:
        if not re.fullmatch(r"[a-z0-9.:_/-]+", entry):
            raise SettingsError(f"{name} must be host names, addresses or networks separated by commas, got {entry!r}")
        if "/" in entry:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise SettingsError(f"{name}: {entry!r} is not a network such as 10.0.0.0/8") from None
    return entries


def normalize_database_url(url: str) -> str:
    """Point SQLAlchemy at psycopg 3 whatever scheme the PaaS hands us."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def redis_url_with_tls(url: str, cert_reqs: str, ca_certs: str) -> str:
    """`url` with REDIS_TLS_CERT_REQS / REDIS_TLS_CA_CERTS added as redis-py's query parameters.

    Only a `rediss://` URL takes them (the embedded Redis's `unix://` ignores
    them); a parameter the URL names itself wins. Every Redis client (broker,
    breakers, rate limiter) is built from this one URL, so all get the same TLS.
    """
    parts = urlsplit(url)
    if parts.scheme != "rediss":
        return url
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    for name, value in (("ssl_cert_reqs", cert_reqs), ("ssl_ca_certs", ca_certs)):
        if value and name not in query:
            query[name] = value
    return urlunsplit(parts._replace(query=urlencode(query)))


def read_machine_name(name: str) -> str:
    """Variable `name` (else the host name) as the machine part of worker ids."""
    raw = os.environ.get(name) or socket.gethostname()
    # Worker ids are `machine:pid:suffix`, read back by splitting on ':'.
    if ":" in raw or not raw.isprintable() or len(raw) > 100:
        raise SettingsError(f"{name} must be at most 100 printable characters without ':', got {raw!r}")
    return raw
