"""PDFs shaped like real files from other projects' bug reports: bare readers open them, so must docqueue.

Made by code: a header after leading bytes, one page whose content stream
breaks MuPDF's reader, one image that refers to an object the file lacks.
"""

from __future__ import annotations

import pymupdf

from tests.support.factories import make_pdf


def with_leading_bytes(count: int, data: bytes | None = None) -> bytes:
    """A PDF whose `%PDF-` header starts after `count` bytes of something else (a mail or HTTP header)."""
    prefix = (b"Content-Type: application/pdf\r\nX-Junk: " + b"x" * count)[:count]
    return prefix + (data or make_pdf(["text after leading bytes"]))


def with_broken_content_stream() -> bytes:
    """Three pages; page 2's content stream nests graphics states past MuPDF's limit, so reading it fails."""
    document = pymupdf.open()
    for number in (1, 2, 3):
        page = document.new_page()
        page.insert_text((72, 72), f"page {number} reads fine")
    broken = document[1]
    document.update_stream(broken.get_contents()[0], b"q " * 200_000 + b"BT /helv 12 Tf 72 700 Td (lost) Tj ET")
    return document.tobytes()


def with_missing_image_object() -> bytes:
    """Two pages with an image each; page 2's image names a colour table in object 9999, which does not exist."""
    document = pymupdf.open()
    for shade in (80, 200):
        page = document.new_page()
        page.insert_text((72, 72), f"a page with an image of shade {shade}")
        pixmap = pymupdf.Pixmap(pymupdf.csRGB, pymupdf.IRect(0, 0, 20, 20), False)
        pixmap.clear_with(shade)
        page.insert_image(pymupdf.Rect(100, 100, 200, 200), pixmap=pixmap)
    xref = document[1].get_images()[0][0]
    document.xref_set_key(xref, "ColorSpace", "[/Indexed /DeviceRGB 255 9999 0 R]")
    return document.tobytes()
