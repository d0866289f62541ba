"""The PyMuPDF work docqueue's pipeline does on a born-digital PDF, bare: the baselines' work.

Open it, read every page's text, extract every distinct image and hash its
bytes. No database, no results kept.
"""

import hashlib

import pymupdf


def pdf_work(path: str) -> int:
    """Every page's text and every distinct image's bytes, hashed; the page count."""
    seen: set[int] = set()
    with pymupdf.open(path) as document:
        for page in document:
            page.get_text()
            for image in page.get_images(full=True):
                if image[0] not in seen:
                    seen.add(image[0])
                    hashlib.sha256(document.extract_image(image[0])["image"]).hexdigest()
        return document.page_count
