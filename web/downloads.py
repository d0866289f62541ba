"""Files a user downloads: stored blobs streamed back, for the API and the pages alike."""

from __future__ import annotations

import tempfile

from flask import Response, send_file

from docqueue.models import Document
from docqueue.queue.run_outputs import results_run
from docqueue.stages.searchable_pdf import searchable_pdf_key
from docqueue.storage import blob_store
from web.extensions import db

#: Blobs up to this size are buffered in memory, larger ones in a temporary file.
SPOOL_BYTES = 8 * 1024 * 1024


def send_searchable_pdf(document: Document) -> Response | None:
    """The searchable PDF of the document's last completed run as a response, or None if it has none."""
    run = results_run(db.session, document.id)
    if not run.complete:
        return None
    # Not a `with`: the response streams it and closes it when sent.
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115
    if blob_store(db.session).download_to(searchable_pdf_key(document.id, run.job_id), spool) == 0:
        spool.close()
        return None
    spool.seek(0)
    stem = document.filename.rsplit(".", 1)[0] or "document"
    return send_file(spool, mimetype="application/pdf", download_name=f"{stem}-searchable.pdf")
