"""A browser upload of several files: each file is its own upload.

The API's request stays all or nothing (`commands.submit_all`): a client
that retries it must never make duplicates. In the browser a person chose
the files one by one, so one bad file must not refuse the good ones: each
is stored (or refused) in its own transaction, and every refused file is
reported with its reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from sqlalchemy.orm import Session

from docqueue.commands import Upload, submit_all
from docqueue.dispatch.dispatcher import nudge_dispatcher
from docqueue.documents import UploadRejected
from docqueue.models import Document


@dataclass(frozen=True)
class Refusal:
    """A file that was not stored, and why, in words for the person who chose it."""

    filename: str
    reason: str


@dataclass(frozen=True)
class EachUploaded:
    """What became of each file of one browser upload."""

    stored: list[Document]
    refused: list[Refusal]


def shown_name(filename: str | None) -> str:
    """A file name as a message may show it: printable characters only, at most 100 of them."""
    return "".join(char for char in filename or "" if char.isprintable())[:100] or "(a file with no name)"


def submit_each(
    session: Session,
    owner_id: int,
    uploads: list[Upload],
    priority: int | None = None,
    wake: Callable[[Session], None] = nudge_dispatcher,
) -> EachUploaded:
    """Store and queue each upload in a transaction of its own; refused ones are reported, not raised.

    A refused file stores nothing of itself and leaves the others as they
    are. The dispatcher is woken once, after the last file, if any was stored.
    """
    stored, refused = [], []
    for upload in uploads:
        try:
            stored.extend(submit_all(session, owner_id, [upload], priority, wake=lambda _session: None))
        except UploadRejected as rejection:
            refused.append(Refusal(shown_name(upload.filename), str(rejection)))
    if stored:
        wake(session)
    return EachUploaded(stored, refused)
