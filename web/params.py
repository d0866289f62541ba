"""Query-string values, parsed strictly: a wrong value is the caller's error to hear about, not to be ignored."""

from __future__ import annotations

import re

from flask import request

_WHOLE_NUMBER = re.compile(r"[+-]?[0-9]{1,19}")


class BadParameter(ValueError):
    """A query parameter has a value it cannot take; the message names it and what it may be."""


def query_int(name: str, default: int, minimum: int, maximum: int) -> int:
    """The query parameter `name` as a whole number from `minimum` to `maximum`; `default` when absent."""
    raw = request.args.get(name)
    if raw is None:
        return default
    message = f"{name} must be a whole number from {minimum} to {maximum}"
    if not _WHOLE_NUMBER.fullmatch(raw.strip()):
        raise BadParameter(f"{message}, got {raw[:40]!r}")
    value = int(raw)
    if not minimum <= value <= maximum:
        raise BadParameter(f"{message}, got {value}")
    return value
