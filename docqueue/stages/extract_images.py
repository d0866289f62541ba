"""Stage `extract_images`: every distinct image of a PDF, stored once.

Pages are read IMAGE_PAGES_PER_BATCH at a time (one at a time while memory
is tight), and the images found are written before reading on once they
hold IMAGE_BATCH_BYTES (a quarter of it while memory is tight), or
BATCH_SECONDS after the batch began, or at the last page. So a document's
images are never all in memory, only a batch's budget and the images of
the pages just read. Why a byte budget and not every two pages: each batch
is a transaction of its own (the lease, the units, the bytes, the rows),
and round trips bound throughput here; written every two pages, 200 pages
with an image each took 100 transactions and ~800 statements, where 16 MiB
(~500 typical 30 KB images) takes one transaction of a few statements.

A batch is one transaction: the units and checkpoint with the lease, the
bytes of its new images with one COPY, the rows ROWS_PER_STATEMENT a
statement. Each image object gets a row (with the first page showing it);
its bytes are stored once per run however many objects carry them (by
sha256). A retry resumes after the last committed batch (its checkpoint),
knowing the objects and bytes the committed batches stored, so nothing is
stored twice. Before anything is decoded, the pixel count its PDF
dictionary (and, for a JPEG, its own header) claims is checked against
MAX_IMAGE_PIXELS: a decompression bomb is recorded as skipped, with its size.
An image that cannot be read (it refers to a missing object, its data is
broken) is recorded as skipped with the reason, as real files from bug
reports need: it costs that image, not the document.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy.orm import Session

from docqueue.db import session_scope
from docqueue.image_limits import pdf_image_size
from docqueue.jobs import Claim
from docqueue.results.images import FoundImage, images_found_before, save_images
from docqueue.runtime.memory import batch_size
from docqueue.runtime.pool_guard import read_piece
from docqueue.settings import get_settings
from docqueue.stages.checkpoints import BatchBudget, committing_batch
from docqueue.stages.inspect import open_document, sniff_type
from docqueue.stages.stage import OnePass, Read, Reading, Skipped, Stage


@dataclass(frozen=True)
class ImageSummary:
    stored: int
    skipped: int


def _found_image(document, xref: int, page_number: int, info: tuple, max_pixels: int) -> FoundImage:
    """The image object `xref`; one that cannot be read (it refers to a missing object, its data is broken) is
    recorded as skipped with the reason: it costs that image, not the stage."""
    image, broken = read_piece(
        f"the image on page {page_number}", lambda: _read_image(document, xref, page_number, info, max_pixels)
    )
    if image is not None:
        return image
    return FoundImage(
        xref=xref,
        page_number=page_number,
        sha256=hashlib.sha256(b"").hexdigest(),
        width=info[2],
        height=info[3],
        format=(info[8] or "").replace("Decode", "").lower() or "raw",
        size_bytes=0,
        skipped_reason=f"skipped: {broken}",
    )


def _read_image(document, xref: int, page_number: int, info: tuple, max_pixels: int) -> FoundImage:
    width, height, filters = info[2], info[3], info[8] or ""
    claimed_width, claimed_height = pdf_image_size(document, xref, width, height)
    if claimed_width * claimed_height > max_pixels:
        raw = document.xref_stream_raw(xref)
        return FoundImage(
            xref=xref,
            page_number=page_number,
            sha256=hashlib.sha256(raw).hexdigest(),
            width=claimed_width,
            height=claimed_height,
            format=filters.replace("Decode", "").lower() or "raw",
            size_bytes=len(raw),
            skipped_reason=(
                f"skipped: {claimed_width} × {claimed_height} pixels is over the limit of "
                f"{max_pixels:,} (MAX_IMAGE_PIXELS)"
            ),
        )
    extracted = document.extract_image(xref)
    data = extracted["image"]
    return FoundImage(
        xref=xref,
        page_number=page_number,
        sha256=hashlib.sha256(data).hexdigest(),
        width=extracted["width"],
        height=extracted["height"],
        format=extracted["ext"],
        size_bytes=len(data),
        data=data,
    )


#: Image bytes a batch holds before it is written (a quarter while memory is tight): see the module's docstring.
IMAGE_BATCH_BYTES = 16 * 1024 * 1024


def _resume(claim: Claim) -> tuple[int, set[int], set[str]]:
    """The checkpoint, and the image objects and bytes the batches before it stored (none on a first attempt)."""
    if not claim.checkpoint:
        return 0, set(), set()
    with session_scope() as session:
        return claim.checkpoint, *images_found_before(session, claim.job_id)


#: What `run` returns for an upload that is itself an image.
AN_IMAGE = "the upload is itself an image: OCR reads it, and it holds no images to extract"


class ImageFinder:
    """Finds a PDF's image objects page by page, each object once and each distinct image's bytes once.

    `seen_xrefs` and `seen_hashes` carry over what the batches before a checkpoint stored.
    """

    def __init__(self, seen_xrefs: set[int] | None = None, seen_hashes: set[str] | None = None) -> None:
        self.max_pixels = get_settings().max_image_pixels
        self.seen_xrefs = seen_xrefs if seen_xrefs is not None else set()
        self.seen_hashes = seen_hashes if seen_hashes is not None else set()
        self.stored = self.skipped = 0

    def on_page(self, document, index: int) -> Iterator[FoundImage]:
        """The image objects first seen on page `index`; an image's bytes only the first time they are seen."""
        # A page whose resources cannot be read loses its images, not the document's.
        infos, _ = read_piece(f"page {index + 1}", lambda: document.load_page(index).get_images(full=True))
        for info in infos or []:
            xref = info[0]
            if xref in self.seen_xrefs:
                continue
            self.seen_xrefs.add(xref)
            image = _found_image(document, xref, index + 1, info, self.max_pixels)
            if image.data is not None:
                if image.sha256 in self.seen_hashes:
                    image = dataclasses.replace(image, data=None)  # the same bytes as an earlier object
                else:
                    self.seen_hashes.add(image.sha256)
            self.skipped += image.skipped_reason is not None
            self.stored += image.skipped_reason is None
            yield image

    def summary(self) -> ImageSummary:
        return ImageSummary(stored=self.stored, skipped=self.skipped)


def run(path: str, claim: Claim) -> ImageSummary | Skipped:
    """Find and store the PDF's image objects batch by batch, after the checkpoint. Runs in a PDF process."""
    import pymupdf  # only in PDF pool processes, which import it at start

    settings = get_settings()
    detected_type = sniff_type(path)
    if detected_type != "pdf":
        return Skipped(AN_IMAGE)
    with open_document(path, detected_type) as document:
        pages = document.page_count
        committed, seen_xrefs, seen_hashes = _resume(claim)
        finder = ImageFinder(seen_xrefs, seen_hashes)
        pending: list[FoundImage] = []
        budget = BatchBudget(IMAGE_BATCH_BYTES)
        end = committed
        while end < pages:
            start, end = end, min(end + batch_size(settings.image_pages_per_batch), pages)
            budget.add(0)
            for index in range(start, end):
                for image in finder.on_page(document, index):
                    budget.add(len(image.data or b""))
                    pending.append(image)
            # No image is read twice (`seen_xrefs`), but MuPDF's cache would keep each one read, up to 256 MB.
            pymupdf.TOOLS.store_shrink(100)
            if budget.due() or end == pages:
                with committing_batch(
                    claim, added=end - committed, total=pages, unit="pages", checkpoint=end
                ) as session:
                    save_images(session, claim.document_id, claim.job_id, pending, settings.rows_per_statement)
                committed, pending = end, []
                budget.clear()
    return finder.summary()


def record(session: Session, claim: Claim, summary: ImageSummary) -> None:
    """Images are written batch by batch as they are found; nothing is left to record."""


def read_in_pass(reading: Reading) -> Read | Skipped:
    """Every distinct image of a small document, held for its one pass."""
    if reading.detected_type != "pdf":
        return Skipped(AN_IMAGE)
    finder = ImageFinder()
    pages = reading.document.page_count
    images = [image for index in range(pages) for image in finder.on_page(reading.document, index)]
    return Read(finder.summary(), images, ("pages", pages))


def store_in_pass(session: Session, claim: Claim, images: list[FoundImage]) -> None:
    save_images(session, claim.document_id, claim.job_id, images, get_settings().rows_per_statement)


STAGE = Stage(
    name="extract_images",
    description="store the PDF's images in batches of pages, each distinct one once, skipping decompression bombs",
    run=run,
    record=record,
    time_limit_setting="image_time_limit_seconds",
    weight=3,
    optional=True,
    one_pass=OnePass(read_in_pass, store_in_pass),
)
