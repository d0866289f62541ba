"""Request values, parsed strictly: a wrong value is the caller's error to hear about, not to be ignored.

Ids in paths use the `id` converter (`/documents/<id:document_id>`): a whole
number that fits the BIGINT key columns, so a larger one is a 404 like any
unknown id, never an SQL error. Query parameters go through `query_int`,
whose BadParameter is a 400 naming the parameter and what it may be.
"""

from __future__ import annotations

import re

from flask import request
from werkzeug.exceptions import BadRequest
from werkzeug.routing import IntegerConverter

from docqueue.models import MAX_ID

_WHOLE_NUMBER = re.compile(r"[+-]?[0-9]{1,19}")


class BadParameter(BadRequest):
    """A query parameter has a value it cannot take; the description names it and what it may be."""


class IdConverter(IntegerConverter):
    """`<id:name>`: a row id from 1 to MAX_ID in ASCII digits; anything else leaves the route unmatched (404)."""

    regex = r"[0-9]+"

    def __init__(self, map, *args, **kwargs) -> None:
        super().__init__(map, min=1, max=MAX_ID)


def whole_number(raw: str | None, minimum: int, maximum: int) -> int | None:
    """`raw` as a whole number in ASCII digits (`²` is a digit to Python, not to us) from `minimum` to `maximum`;
    None when it is anything else."""
    if raw is None or not _WHOLE_NUMBER.fullmatch(raw.strip()):
        return None
    value = int(raw)
    return value if minimum <= value <= maximum else None


def query_int(name: str, default: int | None, minimum: int, maximum: int) -> int | None:
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


def query_choice(name: str, default: int, choices: tuple[int, ...]) -> int:
    """The query parameter `name` as one of the whole numbers `choices`; `default` when absent."""
    raw = request.args.get(name)
    if raw is None:
        return default
    if raw.strip() not in {str(choice) for choice in choices}:
        raise BadParameter(f"{name} must be one of {', '.join(map(str, choices))}, got {raw[:40]!r}")
    return int(raw)
