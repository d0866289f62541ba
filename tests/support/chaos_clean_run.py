"""What a clean run stores for a chaos document, read straight from the file: the suite compares with it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import pymupdf

from docqueue.results.chunks import split_into_chunks
from docqueue.settings import get_settings
from docqueue.text_cleaning import storable_text


def digest(data: str | bytes) -> str:
    """sha256 of text (as UTF-8) or bytes."""
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


@dataclass(frozen=True)
class ChaosDocument:
    name: str
    data: bytes
    #: sha256 of each page's text as a clean run stores it, page 1 first.
    page_digests: tuple[str, ...]
    #: (seq, first page, last page, sha256 of the text) of each chunk, in order.
    chunk_digests: tuple[tuple[int, int, int, str], ...]
    #: (xref, first page showing it, sha256 of its bytes) of each image object, by xref.
    image_digests: tuple[tuple[int, int, str], ...]

    @property
    def long(self) -> bool:
        return self.name.startswith("long-")

    @classmethod
    def of(cls, name: str, data: bytes) -> ChaosDocument:
        """The document and what a clean run stores for it."""
        with pymupdf.open(stream=data, filetype="pdf") as document:
            texts = [storable_text(page.get_text()).strip() for page in document]
            images: dict[int, tuple[int, str]] = {}
            for page in document:
                for info in page.get_images(full=True):
                    if info[0] not in images:
                        images[info[0]] = (page.number + 1, digest(document.extract_image(info[0])["image"]))
        settings = get_settings()
        chunks = split_into_chunks(enumerate(texts, start=1), settings.chunk_size_chars, settings.chunk_overlap_chars)
        return cls(
            name,
            data,
            tuple(digest(text) for text in texts),
            tuple((c.seq, c.page_start, c.page_end, digest(c.text)) for c in chunks),
            tuple((xref, page, sha) for xref, (page, sha) in sorted(images.items())),
        )
