"""Pages of a user's documents, newest first, for any number of documents.

Keyset pagination: a page starts just after (or just before) a document the
reader already saw, found by its (created_at, id) position in the
`documents_owner_created_idx` order, so page 1000 costs what page 1 does and
a document uploaded meanwhile never shifts a page under the reader. Optional
filters: part of the file name, and a status.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Select, select, tuple_
from sqlalchemy.orm import Session

from docqueue.models import MAX_ID, Document
from docqueue.statuses import DocumentStatus

#: The statuses the filter offers, in their lifecycle order.
DOCUMENT_STATUSES = tuple(status.value for status in DocumentStatus)
PAGE_SIZE = 50
MAX_SEARCH_CHARS = 255


class BadListingRequest(ValueError):
    """A listing parameter is malformed; the message says which and why."""


@dataclass(frozen=True)
class ListingRequest:
    """What to show: a search, a status, and where the page starts (at most one of `before`/`after`)."""

    search: str = ""
    status: str = ""
    before: int | None = None  # the page holds documents older than this one
    after: int | None = None  # the page holds documents newer than this one

    @classmethod
    def parse(cls, args) -> ListingRequest:
        """Read and check `q`, `status`, `before`, `after` from a mapping of query parameters."""
        search = (args.get("q") or "").strip()
        if len(search) > MAX_SEARCH_CHARS:
            raise BadListingRequest(f"the search is longer than {MAX_SEARCH_CHARS} characters")
        if "\x00" in search:
            raise BadListingRequest("the search cannot contain NUL characters")
        status = args.get("status") or ""
        if status and status not in DOCUMENT_STATUSES:
            raise BadListingRequest(f"unknown status {status!r}: choose one of {', '.join(DOCUMENT_STATUSES)}")
        before, after = _document_id(args, "before"), _document_id(args, "after")
        if before is not None and after is not None:
            raise BadListingRequest("a page link has either `before` or `after`, not both")
        return cls(search=search, status=status, before=before, after=after)

    def filters(self) -> dict[str, str]:
        """The search and status as query parameters, for links that keep them."""
        return {name: value for name, value in (("q", self.search), ("status", self.status)) if value}


def _document_id(args, name: str) -> int | None:
    raw = args.get(name)
    if raw is None or raw == "":
        return None
    if not (raw.isascii() and raw.isdigit()) or not 0 < int(raw) <= MAX_ID:
        raise BadListingRequest(f"`{name}` must be a document id, got {raw!r}")
    return int(raw)


@dataclass(frozen=True)
class DocumentsPage:
    """One page of documents, newest first, and whether there are more on either side."""

    documents: list[Document]
    newer: bool  # documents newer than the first one shown match too
    older: bool  # documents older than the last one shown match too


def documents_page(session: Session, owner_id: int, request: ListingRequest, size: int = PAGE_SIZE) -> DocumentsPage:
    """The page `request` asks for among the owner's documents."""
    query = select(Document).where(Document.owner_id == owner_id)
    if request.search:
        query = query.where(Document.filename.ilike(f"%{_escape_like(request.search)}%", escape="\\"))
    if request.status:
        query = query.where(Document.status == request.status)
    position = tuple_(Document.created_at, Document.id)
    if request.after is not None:
        # The page just above `after`: read upwards from it, then show it newest first.
        rows = list(
            session.scalars(
                query.where(position > _position_of(owner_id, request.after))
                .order_by(Document.created_at.asc(), Document.id.asc())
                .limit(size + 1)
            )
        )
        return DocumentsPage(documents=rows[:size][::-1], newer=len(rows) > size, older=True)
    if request.before is not None:
        query = query.where(position < _position_of(owner_id, request.before))
    rows = list(session.scalars(query.order_by(Document.created_at.desc(), Document.id.desc()).limit(size + 1)))
    return DocumentsPage(documents=rows[:size], newer=request.before is not None, older=len(rows) > size)


def _position_of(owner_id: int, document_id: int) -> Select:
    # A scalar subquery: one round trip. Someone else's document id gives no position, hence no rows.
    return (
        select(Document.created_at, Document.id)
        .where(Document.id == document_id, Document.owner_id == owner_id)
        .scalar_subquery()
    )


def _escape_like(text: str) -> str:
    """`text` matched literally by LIKE: its own % and _ are not wildcards."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
