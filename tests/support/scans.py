"""Scans made on the spot: text rendered to image-only pages, turned, skewed, 1-bit CCITT or JBIG2, PNG and TIFF;
and a JBIG2 page claiming any size."""

from __future__ import annotations

import io
import os
import re
import struct
import subprocess

import pymupdf
from PIL import Image

PARAGRAPHS = [
    (
        "Quarterly revenue grew across every region, driven by strong demand for renewable energy storage "
        "systems. The board approved a new research budget and asked management to report on supply chain risks."
    ),
    (
        "Municipal water treatment plants must monitor turbidity, chlorine residual and bacterial counts daily. "
        "Inspectors visited seven facilities in March and found minor documentation problems at two of them."
    ),
    (
        "The library will extend its opening hours during the examination period. Students may reserve study "
        "rooms online, borrow laptops at the front desk and request interlibrary loans without any charge."
    ),
    (
        "Mountain weather changes quickly, so hikers should carry waterproof clothing, a detailed map, enough "
        "water and a charged phone. Tell someone your planned route and the time you expect to return."
    ),
    (
        "Our engineering team replaced the legacy billing service with a modular system that processes invoices "
        "faster, handles multiple currencies and produces clearer monthly statements for every customer."
    ),
    (
        "Researchers measured the migration patterns of northern songbirds using lightweight radio transmitters "
        "and discovered that several species now leave their wintering grounds almost two weeks earlier."
    ),
]


def text_image(paragraph: str, dpi: int = 300, fontsize: float = 13) -> Image.Image:
    """A grey 300-dpi image of a letter page carrying `paragraph`, as a scanner would make it."""
    document = pymupdf.open()
    page = document.new_page(width=612, height=792)
    left = page.insert_textbox(pymupdf.Rect(54, 54, 558, 738), paragraph, fontsize=fontsize, fontname="times-roman")
    assert left >= 0, "the text does not fit the page: PyMuPDF would leave it blank"
    pixmap = page.get_pixmap(dpi=dpi, colorspace=pymupdf.csGRAY)
    return Image.frombytes("L", (pixmap.width, pixmap.height), pixmap.samples)


def two_column_image(left: str, right: str, dpi: int = 300) -> Image.Image:
    """A grey 300-dpi image of a letter page set in two columns, `left` then `right`."""
    document = pymupdf.open()
    page = document.new_page(width=612, height=792)
    for text, rect in ((left, pymupdf.Rect(54, 54, 297, 738)), (right, pymupdf.Rect(315, 54, 558, 738))):
        assert page.insert_textbox(rect, text, fontsize=12, fontname="times-roman") >= 0, "the column does not fit"
    pixmap = page.get_pixmap(dpi=dpi, colorspace=pymupdf.csGRAY)
    return Image.frombytes("L", (pixmap.width, pixmap.height), pixmap.samples)


def scan_page(
    image: Image.Image, *, turn: int = 0, skew: float = 0.0, ccitt: bool = False, jbig2: bool = False
) -> bytes:
    """A one-page image-only PDF of `image`: turned `turn` degrees anticlockwise, skewed, or 1-bit CCITT G4 or JBIG2."""
    if turn:
        image = image.rotate(turn, expand=True)
    if skew:
        image = image.rotate(skew, expand=True, fillcolor=255, resample=Image.Resampling.BICUBIC)
    if ccitt or jbig2:
        image = image.convert("1")  # Pillow writes 1-bit images into a PDF as CCITTFaxDecode (G4)
    out = io.BytesIO()
    image.save(out, "PDF", resolution=300)
    return as_jbig2(out.getvalue()) if jbig2 else out.getvalue()


def _jbig2_segment(number: int, kind: int, data: bytes) -> bytes:
    # Segment header (JBIG2, 7.2): number, flags (type; 1-byte page association), no referred-to
    # segments, page 1, data length.
    return struct.pack(">IBBBI", number, kind, 0, 1, len(data)) + data


def as_jbig2(ccitt_pdf: bytes) -> bytes:
    """The one-page CCITT G4 scan `ccitt_pdf` with its image re-encoded as JBIG2, as scanners' PDFs carry it.

    No JBIG2 encoder is packaged here, but a JBIG2 generic region may be
    MMR-coded, which is CCITT G4 coding: the G4 data goes unchanged into an
    immediate generic region segment (MMR on) after a page information
    segment, the embedded stream format PDF's JBIG2Decode reads.
    """
    source = pymupdf.open(stream=ccitt_pdf, filetype="pdf")
    xref = source[0].get_images(full=True)[0][0]
    width, height = (int(source.xref_get_key(xref, key)[1]) for key in ("Width", "Height"))
    page_information = struct.pack(">IIIIBH", width, height, 0, 0, 0, 0)
    region = struct.pack(">IIIIB", width, height, 0, 0, 0) + bytes([0x01]) + source.xref_stream_raw(xref)
    source.update_stream(xref, _jbig2_segment(0, 48, page_information) + _jbig2_segment(1, 38, region), compress=False)
    for key, value in (("DecodeParms", "null"), ("Filter", "/JBIG2Decode"), ("Decode", "[1 0]")):
        # JBIG2 bitmaps have 1 for black; the G4 data came with BlackIs1, so black is kept by inverting.
        source.xref_set_key(xref, key, value)
    return source.tobytes()


def jbig2_claiming(width: int, height: int, dictionary: tuple[int, int] | None = None) -> bytes:
    """A one-page JBIG2 scan whose page and region segments claim `width` × `height` pixels (the data is a
    small scan's), and whose PDF image dictionary claims `dictionary`, by default the same size."""
    source = pymupdf.open(stream=scan_page(text_image("a small scan"), jbig2=True), filetype="pdf")
    xref = source[0].get_images(full=True)[0][0]
    raw = source.xref_stream_raw(xref)
    region_data = raw[11 + 19 + 11 + 8 :]  # after both segment headers, the page information and the region's size
    page_information = struct.pack(">IIIIBH", width, height, 0, 0, 0, 0)
    region = struct.pack(">II", width, height) + region_data
    source.update_stream(xref, _jbig2_segment(0, 48, page_information) + _jbig2_segment(1, 38, region), compress=False)
    for key, value in zip(("Width", "Height"), dictionary or (width, height), strict=True):
        source.xref_set_key(xref, key, str(value))
    source.xref_set_key(xref, "Filter", "/JBIG2Decode")  # update_stream drops it
    return source.tobytes()


def joined_pdf(parts: list[bytes]) -> bytes:
    """One PDF of the pages of every PDF in `parts`, their image streams copied as they are."""
    document = pymupdf.open()
    for part in parts:
        document.insert_pdf(pymupdf.open(stream=part, filetype="pdf"))
    return document.tobytes()


def text_pdf_page(paragraph: str) -> bytes:
    """A one-page PDF with `paragraph` as a real text layer."""
    document = pymupdf.open()
    page = document.new_page(width=612, height=792)
    page.insert_textbox(pymupdf.Rect(72, 72, 540, 500), paragraph, fontsize=13, fontname="times-roman")
    return document.tobytes()


def image_bytes(images: list[Image.Image], kind: str) -> bytes:
    """`images` as one PNG (the first) or a multi-page TIFF."""
    out = io.BytesIO()
    if kind == "png":
        images[0].save(out, "PNG", dpi=(300, 300))
    else:
        images[0].save(out, "TIFF", save_all=True, append_images=images[1:], compression="tiff_lzw", dpi=(300, 300))
    return out.getvalue()


def words(text: str) -> set[str]:
    """The words of `text` as a comparable set: lower case, no punctuation, two letters or more."""
    return {word for word in re.findall(r"[a-z0-9]+", text.lower()) if len(word) > 1}


def bare_tesseract_words(image: Image.Image, tmp_path) -> set[str]:
    """What plain `tesseract IMAGE stdout` reads from `image` (one thread, as PITFALLS advises for speed)."""
    path = tmp_path / f"bare-{id(image)}.png"
    image.save(path, dpi=(300, 300))
    result = subprocess.run(
        ["tesseract", str(path), "stdout"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "OMP_THREAD_LIMIT": "1"},
    )
    return words(result.stdout)


def coverage(found: set[str], expected: set[str]) -> float:
    """The share of `expected` words that are in `found`."""
    return len(found & expected) / len(expected)
