"""Decompression bombs: an image's pixel count, checked before anything decodes it.

A 0.9 MB PNG can declare 30000 × 30000 pixels (2.7 GB decoded). Every image
docqueue would decode or render — an uploaded PNG/JPEG/TIFF, and images
inside PDFs — is checked against MAX_IMAGE_PIXELS (Pillow's default limit)
from its header alone. `check_image_pixels` is the one rule; the readers
below find the sizes in the three uploadable formats' headers, and in a PDF
image's dictionary, JPEG header or JBIG2 segments (`check_page_images`,
before a page is rendered).
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
#: Bytes of a PDF image stream read for the size its own header claims: headers come first.
HEADER_BYTES = 65_536


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


def check_page_images(page: pymupdf.Page) -> None:
    """Raise ImageTooLarge if an image the PDF page shows claims more than MAX_IMAGE_PIXELS; call before rendering.

    MuPDF decodes an image at the size its stream claims whatever the page
    shows of it: a JBIG2 page 60000 pixels square is a 450 MB bitmap.
    """
    for info in page.get_images(full=True):
        width, height = pdf_image_size(page.parent, info[0], info[2], info[3])
        check_image_pixels(width, height, f"an image on page {page.number + 1}")


def pdf_image_size(document: pymupdf.Document, xref: int, width: int, height: int) -> tuple[int, int]:
    """The largest size anything about a PDF image claims: its dictionary's `width` × `height`, a JPEG's own
    header, or a JBIG2 stream's segments (which need not agree with the dictionary)."""
    kind, filters = document.xref_get_key(xref, "Filter")
    readers = {"/DCTDecode": _jpeg_sizes, "/JBIG2Decode": _jbig2_sizes}
    # Only a lone filter: behind another one the header is still encoded.
    if kind == "name" and filters in readers:
        header = document.xref_stream_raw(xref)[:HEADER_BYTES]
        for claimed_width, claimed_height in readers[filters](io.BytesIO(header)):
            width, height = max(width, claimed_width), max(height, claimed_height)
    return width, height


# Segment types that begin with a size (JBIG2, 7.4): page information, then the region segments
# (text, halftone, generic, refinement; intermediate and immediate).
_JBIG2_PAGE_INFORMATION = 48
_JBIG2_REGIONS = {4, 6, 7, 20, 22, 23, 36, 38, 39, 40, 42, 43}
# A height not known until the page's stripes end (7.4.8.2): its regions tell instead.
_JBIG2_UNKNOWN = 0xFFFFFFFF


def _jbig2_sizes(stream: BinaryIO) -> Iterator[tuple[int, int]]:
    # The embedded format PDF carries: segment headers (7.2) with their data, no file header.
    while True:
        fixed = stream.read(6)
        if len(fixed) < 6:
            return
        number, flags, referred = struct.unpack(">IBB", fixed)
        count = referred >> 5
        if count == 7:  # long form: a 29-bit count, then one retention bit per segment (and one more)
            rest = stream.read(3)
            if len(rest) < 3:
                return
            count = struct.unpack(">I", bytes([referred & 0x1F]) + rest)[0]
            stream.seek((count + 8) // 8, 1)
        stream.seek(count * (1 if number <= 256 else 2 if number <= 65536 else 4), 1)
        stream.seek(4 if flags & 0x40 else 1, 1)  # the page it belongs to
        length_bytes = stream.read(4)
        if len(length_bytes) < 4:
            return
        (length,) = struct.unpack(">I", length_bytes)
        kind = flags & 0x3F
        if kind == _JBIG2_PAGE_INFORMATION or kind in _JBIG2_REGIONS:
            size = stream.read(8)
            if len(size) < 8:
                return
            width, height = struct.unpack(">II", size)
            yield width, 0 if height == _JBIG2_UNKNOWN else height
            length -= 8
        if length == _JBIG2_UNKNOWN:
            return  # an immediate generic region of unknown length: its end is found by decoding it
        stream.seek(length, 1)
