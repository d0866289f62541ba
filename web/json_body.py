"""Request bodies' JSON, parsed only when it nests no deeper than MAX_JSON_DEPTH.

Python's json parser recurses once per level of nesting: a body of
100,000 `[` raised RecursionError, which is not the ValueError Flask turns
into a 400, so `PUT /api/me/callback` answered 500. The nesting is counted
first, without recursion (brackets outside strings), and a body nested
deeper is refused as invalid JSON: `request.get_json()` then answers 400
like any other malformed body (`silent=True` gives None).
"""

from __future__ import annotations

import re
from typing import Any

from flask.json.provider import DefaultJSONProvider

#: Deepest nesting of arrays and objects a request body may have; no body this app reads needs more than 2.
MAX_JSON_DEPTH = 64

_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = re.compile(r"[\[\]{}]")


class JsonTooDeep(ValueError):
    """The JSON nests deeper than MAX_JSON_DEPTH."""


def nesting_depth(text: str, limit: int = MAX_JSON_DEPTH) -> int:
    """How deep `text`'s arrays and objects nest, counting brackets outside strings; stops counting past `limit`."""
    depth = deepest = 0
    for bracket in _BRACKETS.finditer(_STRINGS.sub('""', text)):
        depth += 1 if bracket.group() in "[{" else -1
        deepest = max(deepest, depth)
        if deepest > limit:
            break
    return deepest


class DepthLimitedJSONProvider(DefaultJSONProvider):
    """Flask's JSON provider, refusing text nested deeper than MAX_JSON_DEPTH before parsing it."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        """Parse `s`; JsonTooDeep (a ValueError, so a 400 for a request body) when it nests too deep."""
        text = s.decode("utf-8", errors="replace") if isinstance(s, bytes) else s
        if nesting_depth(text) > MAX_JSON_DEPTH:
            raise JsonTooDeep(f"the JSON nests deeper than {MAX_JSON_DEPTH} levels")
        return super().loads(s, **kwargs)
