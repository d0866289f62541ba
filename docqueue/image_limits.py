"""Decompression bombs: an image's pixel count, checked before anything decodes it.

A 0.9 MB PNG can declare 30000 × 30000 pixels (2.7 GB decoded). Every image
docqueue would decode or render — an uploaded PNG/JPEG/TIFF, and images
inside PDFs — is checked against MAX_IMAGE_PIXELS (Pillow's default limit)
from its header alone. `check_image_pixels` is the one rule; the readers
below find the sizes in the three uploadable formats' headers.
"""

from __future__ import annotations

import io
import struct
from typing import TYPE_CHECKING, BinaryIO, Iterator

from docqueue.errors import DocumentRejected
from docqueue.settings import get_settings

if TYPE_CHECKING:
    import pymupdf

#: Most TIFF pages read before giving up on a chain of IFDs (a hostile file can loop them).
MAX_TIFF_PAGES = 10_000


class ImageTooLarge(DocumentRejected):
    """The image has more pixels than MAX_IMAGE_PIXELS allows: decoding it could exhaust memory."""


def _millions(pixels: int) -> str:
    return f"{pixels / 1_000_000:,.0f} million" if pixels >= 10_000_000 else f"{pixels / 1_000_000:.1f} million"


def check_image_pixels(width: int, height: int, what: str = "the image") -> None:
    """Raise ImageTooLarge (naming the size) if a `width` × `height` image is over MAX_IMAGE_PIXELS."""
    limit = get_settings().max_image_pixels
    if width * height > limit:
        raise ImageTooLarge(
            f"{what} is {width} × {height} pixels ({_millions(width * height)}), more than the "
            f"{_millions(limit)} allowed (MAX_IMAGE_PIXELS)"
        )


def check_image_file(path: str, detected_type: str) -> None:
    """Check every frame or page of an uploaded PNG, JPEG or TIFF before it is decoded."""
    readers = {"png": _png_sizes, "jpeg": _jpeg_sizes, "tiff": _tiff_sizes}
    with open(path, "rb") as image:
        sizes = list(readers[detected_type](image))
    for number, (width, height) in enumerate(sizes, start=1):
        what = f"page {number} of the TIFF" if detected_type == "tiff" and len(sizes) > 1 else "the image"
        check_image_pixels(width, height, what)


def claimed_size(document: pymupdf.Document, xref: int, width: int, height: int, filters: str) -> tuple[int, int]:
    """The largest size anything about a PDF image claims: its dictionary, or a JPEG's own header."""
    if "DCTDecode" in filters:
        header = next(_jpeg_sizes(io.BytesIO(document.xref_stream_raw(xref)[:65536])), None)
        if header:
            width, height = max(width, header[0]), max(height, header[1])
    return width, height


def check_page_images(page: pymupdf.Page, what: str) -> None:
    """Check every image a PDF page shows before rendering the page decodes them (OCR renders whole pages)."""
    for info in page.get_images():
        xref, width, height, filters = info[0], info[2], info[3], info[8] or ""
        check_image_pixels(*claimed_size(page.parent, xref, width, height, filters), f"an image on {what}")


def _png_sizes(image: BinaryIO) -> Iterator[tuple[int, int]]:
    # Signature (8 bytes), then the IHDR chunk: length, type, width, height.
    header = image.read(24)
    if len(header) == 24 and header[12:16] == b"IHDR":
        yield struct.unpack(">II", header[16:24])


# Start-of-frame markers carry the frame's size; C4 (DHT), C8 (JPG) and CC (DAC) share the range but do not.
_JPEG_FRAME_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
# Markers with no length field after them.
_JPEG_BARE_MARKERS = {0x01, *range(0xD0, 0xDA)}


def _jpeg_sizes(image: BinaryIO) -> Iterator[tuple[int, int]]:
    if image.read(2) != b"\xff\xd8":
        return
    while True:
        byte = image.read(1)
        if byte != b"\xff":
            return  # not at a marker: leave the rest to the decoder
        marker = image.read(1)
        while marker == b"\xff":  # fill bytes
            marker = image.read(1)
        if not marker:
            return
        code = marker[0]
        if code in _JPEG_BARE_MARKERS:
            continue
        length_bytes = image.read(2)
        if len(length_bytes) < 2 or code == 0xDA:  # start of scan: the header is over
            return
        (length,) = struct.unpack(">H", length_bytes)
        if code in _JPEG_FRAME_MARKERS:
            frame = image.read(5)
            if len(frame) == 5:
                height, width = struct.unpack(">HH", frame[1:5])
                yield width, height
            return
        image.seek(length - 2, 1)


def _tiff_sizes(image: BinaryIO) -> Iterator[tuple[int, int]]:
    header = image.read(8)
    if len(header) < 8 or header[:2] not in (b"II", b"MM") or header[2:4] not in (b"*\x00", b"\x00*"):
        return  # BigTIFF and others: MuPDF reads none of them
    order = "<" if header[:2] == b"II" else ">"
    (offset,) = struct.unpack(order + "I", header[4:8])
    seen: set[int] = set()
    while offset and offset not in seen and len(seen) < MAX_TIFF_PAGES:
        seen.add(offset)
        image.seek(offset)
        count_bytes = image.read(2)
        if len(count_bytes) < 2:
            return
        (count,) = struct.unpack(order + "H", count_bytes)
        entries = image.read(12 * count)
        size = {}
        for index in range(len(entries) // 12):
            tag, kind, _, raw = struct.unpack(order + "HHI4s", entries[12 * index : 12 * index + 12])
            if tag in (256, 257):  # ImageWidth, ImageLength: SHORT (3) or LONG (4)
                size[tag] = struct.unpack(order + ("H" if kind == 3 else "I"), raw[: 2 if kind == 3 else 4])[0]
        if len(size) == 2:
            yield size[256], size[257]
        next_bytes = image.read(4)
        if len(next_bytes) < 4:
            return
        (offset,) = struct.unpack(order + "I", next_bytes)
