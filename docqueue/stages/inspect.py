"""Stage `inspect`: what is this file, really, and can we open it?

The type comes from the bytes, never from the name or the declared
content type. Whatever cannot be processed fails here with a specific reason:
a document of more than MAX_DOCUMENT_PAGES pages too, and one whose pages
would pass its owner's daily page quota (counted in here, `docqueue/quotas.py`),
and a PDF whose pages nest forms too deep or draw too much.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import filetype
from sqlalchemy.orm import Session

from docqueue.budgets import pages_over_limit
from docqueue.content_limits import check_content
from docqueue.db import last_before_commit
from docqueue.documents import record_inspection
from docqueue.errors import DocumentRejected
from docqueue.image_limits import check_image_file
from docqueue.jobs import Claim
from docqueue.quotas import count_in_pages
from docqueue.runtime.pool_guard import with_detail
from docqueue.stages.stage import OnePass, Read, Reading, Stage

if TYPE_CHECKING:
    import pymupdf

#: MIME type found in the bytes -> PyMuPDF's name for the format.
SUPPORTED_TYPES = {
    "application/pdf": "pdf",
    "image/png": "png",
    "image/jpeg": "jpeg",
    "image/tiff": "tiff",
}


@dataclass(frozen=True)
class Inspection:
    detected_type: str
    page_count: int


#: PDF readers accept a header starting anywhere in the first 1,024 bytes (real files carry mail or HTTP headers).
PDF_HEADER_WITHIN = 1024


def pdf_header_at(head: bytes) -> int | None:
    """Where the `%PDF-` header starts in `head`, if it starts within its first PDF_HEADER_WITHIN bytes."""
    # The header may start at byte 1,023 and end past 1,024: search up to where such a header ends.
    offset = head.find(b"%PDF-", 0, PDF_HEADER_WITHIN + len(b"%PDF-") - 1)
    return None if offset < 0 else offset


def sniff_type(path: str) -> str:
    """The PyMuPDF format name for the file's bytes; DocumentRejected if unsupported."""
    with open(path, "rb") as handle:
        head = handle.read(8192)
    if not head:
        raise DocumentRejected("the file is empty")
    if pdf_header_at(head) is not None:
        return "pdf"
    kind = filetype.guess(head)
    if kind is None or kind.mime not in SUPPORTED_TYPES:
        found = kind.mime if kind else "unrecognised data"
        raise DocumentRejected(f"unsupported file type ({found}): docqueue accepts PDF, PNG, JPEG and TIFF")
    return SUPPORTED_TYPES[kind.mime]


def open_document(path: str, detected_type: str) -> pymupdf.Document:
    """Open the file as `detected_type`; DocumentRejected if it is damaged, locked or an image too large to decode."""
    import pymupdf  # only in PDF pool processes, which import it at start

    if detected_type != "pdf":
        check_image_file(path, detected_type)
    try:
        document = pymupdf.open(path, filetype=detected_type)
    except (pymupdf.FileDataError, RuntimeError, ValueError) as error:
        # MuPDF's text names the temporary file: it goes to the log, not to the user.
        rejection = DocumentRejected(f"the {detected_type.upper()} file is damaged and cannot be opened")
        raise with_detail(rejection, error) from None
    if document.needs_pass:
        document.close()
        raise DocumentRejected("the PDF is protected by a password: upload a copy without one")
    if document.page_count == 0:
        document.close()
        raise DocumentRejected(
            f"the {detected_type.upper()} file has no readable pages: it may be damaged or truncated"
        )
    return document


def run(path: str, claim: Claim) -> Inspection:
    """Sniff, open and count pages; DocumentRejected over MAX_DOCUMENT_PAGES or for a PDF whose drawing is hopeless
    (`content_limits`). Runs in a PDF pool process."""
    detected_type = sniff_type(path)
    with open_document(path, detected_type) as document:
        return inspected(document, detected_type)


def inspected(document: pymupdf.Document, detected_type: str) -> Inspection:
    """What `run` finds in the open `document`; DocumentRejected as `run` says."""
    refusal = pages_over_limit(document.page_count)
    if refusal:
        raise DocumentRejected(refusal)
    if detected_type == "pdf":
        check_content(document)
    return Inspection(detected_type=detected_type, page_count=document.page_count)


def record(session: Session, claim: Claim, inspection: Inspection) -> None:
    """Record the type and pages, counting the pages into the owner's day (DailyPageQuotaReached past it).

    The count is the transaction's last write: the owner's row for the day is updated by every document
    of theirs, and stays locked from that write to the commit (py-spy of a busy worker: written first in a
    small document's one pass, waiting for it took a third of the worker threads' time).
    """
    record_inspection(session, claim.document_id, inspection.detected_type, inspection.page_count)
    last_before_commit(session, lambda: count_in_pages(session, claim.owner_id, inspection.page_count))


def read_in_pass(reading: Reading) -> Read:
    """`run`'s findings for a small document's one pass, from the document it opened."""
    return Read(inspected(reading.document, reading.detected_type))


STAGE = Stage(
    name="inspect",
    description="sniff the file's type from its bytes, open it and count its pages",
    run=run,
    record=record,
    time_limit_setting="discovery_time_limit_seconds",
    weight=1,
    one_pass=OnePass(read_in_pass),
)
