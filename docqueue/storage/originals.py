"""A job's original file on the worker's local disk, fetched from the blob store once."""

from __future__ import annotations

import os

from docqueue.db import session_scope
from docqueue.storage import blob_store, original_file_key


class OriginalFile:
    """The document's original file in `directory`, fetched on first use only.

    A worker makes one per message: the stages it runs one after another share it.
    """

    def __init__(self, document_id: int, directory: str) -> None:
        self.document_id = document_id
        self.path = os.path.join(directory, "original")
        self.fetched = False

    def fetch(self) -> str:
        """The local path, fetching the file now if this is the first call."""
        if not self.fetched:
            with open(self.path, "wb") as target, session_scope() as session:
                blob_store(session).download_to(original_file_key(self.document_id), target)
            self.fetched = True
        return self.path
