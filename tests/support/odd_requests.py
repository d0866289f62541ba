"""What an odd request may leave behind: the rows it must not half-store."""

from __future__ import annotations

import sqlalchemy as sa


def stored(session) -> tuple[int, int, int]:
    """(documents, blob chunks, queue items) in the database."""
    session.rollback()
    row = session.execute(
        sa.text(
            "SELECT (SELECT count(*) FROM documents), (SELECT count(*) FROM blob_chunks), "
            "(SELECT count(*) FROM document_queue)"
        )
    ).one()
    return tuple(row)
