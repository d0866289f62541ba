"""Keyset pagination for the API's list endpoints: `?limit=` (at most 1000) and `?after=`, answered with `next`.

Every list endpoint answers an object holding its list and a `next` URL
(null on the last page). Lists are ordered by an integer key (a page
number, a row id); `after` is the key of the last item already seen, so a
page never shifts when rows are added behind it.

    window = ListWindow.from_request()
    rows = fetch(after=window.after, limit=window.fetch_limit)
    items, next_url = window.split(rows, key=lambda row: row.page_number)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from flask import request, url_for

from docqueue.models import MAX_ID
from web.params import query_int

T = TypeVar("T")

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


@dataclass(frozen=True)
class ListWindow:
    """Which slice of a list a request asks for."""

    limit: int
    after: int

    @classmethod
    def from_request(cls, default_limit: int = DEFAULT_LIMIT) -> ListWindow:
        """Read `?limit=` (1 to 1000) and `?after=` (a key: an id or a page number); BadParameter (400) otherwise."""
        return cls(query_int("limit", default_limit, 1, MAX_LIMIT), query_int("after", 0, 0, MAX_ID))

    @property
    def fetch_limit(self) -> int:
        """How many rows to fetch: one more than the limit, to learn whether a next page exists."""
        return self.limit + 1

    def split(self, rows: Sequence[T], key: Callable[[T], int]) -> tuple[list[T], str | None]:
        """This page's items and the URL of the next page (None when `rows` held no more)."""
        items = list(rows[: self.limit])
        if len(rows) <= self.limit:
            return items, None
        # Only the route's own values and the two paging parameters: a query's other names (`endpoint`,
        # `_method`, `_anchor`, a route value like `document_id`) would steer url_for itself.
        return items, url_for(request.endpoint, **request.view_args, limit=self.limit, after=key(items[-1]))
