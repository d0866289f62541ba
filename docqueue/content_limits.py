"""Content bombs: a page whose drawing is hopeless by its own measure, refused at `inspect` before any rendering.

A 5 KB PDF can hold a form XObject that draws the next one 4 times, 25
levels deep: 4^25 drawings for MuPDF to run through on every page that
shows it, which held a PDF process for the stage's whole time limit. Its
size is plain from its objects without drawing anything: each content
stream is read once (through PyMuPDF's low-level xref access), its
operators counted and its `Do`s of forms followed, every form's own cost
remembered. Two measures, per page:

- **nesting**: how deep forms draw forms (MAX_CONTENT_NESTING); a form
  that draws itself is as deep as the limit allows, and refused too;
- **operations**: how many content operators drawing the page runs, every
  form counted as often as it is drawn, plus what setting up each drawing
  of a form costs (MAX_CONTENT_OPERATORS).

Operators are counted as the stream's bare words (inline image data left
out, the words inside strings counted too): a cheap upper bound, read at
C speed, exact enough for a limit far above any real page (the densest
corpus page measures 2,757).
"""

from __future__ import annotations

import logging
import re
import string
from dataclasses import dataclass
from typing import TYPE_CHECKING

from docqueue.errors import DocumentRejected
from docqueue.settings import get_settings

if TYPE_CHECKING:
    import pymupdf

logger = logging.getLogger(__name__)

# Inline image data holds bytes that are no operators.
_INLINE_IMAGES = re.compile(rb"ID\s.*?EI", re.DOTALL)
# Letters to "a", whitespace to " ": an operator is then an "a" after a space or a delimiter, counted at C speed
# (a regular expression's per-match cost made measuring slower than MuPDF's own text extraction).
# (Closing delimiters count as space: "[(x)]TJ" and "(x)Tj" run an operator.)
_SHAPES = bytes.maketrans(bytes(string.ascii_letters, "ascii") + b" \t\r\n\f\x00])>}", b"a" * 52 + b" " * 10)
_DRAW_XOBJECT = re.compile(rb"/([^\s/<>\[\]()%{}]+)\s*Do\b")
_NAMED_REFERENCE = re.compile(r"/([^\s/<>\[\]()%{}]+)\s*(\d+)\s+\d+\s+R")
_REFERENCE = re.compile(r"(\d+)\s+\d+\s+R")
#: Operations one drawing of a form counts for besides its own: setting a form up cost MuPDF ~22 us here, about 30
#: plain operators' worth (a page of 1 M rectangles took 0.74 s to extract text from; 350,000 nested forms, 7.7 s).
FORM_DRAW_COST = 30
#: Most parents followed up the page tree for inherited resources (a cyclic tree would loop).
MAX_TREE_DEPTH = 64


def _operators(data: bytes) -> int:
    """How many operators the content stream `data` runs: its bare words (words in strings counted too)."""
    shaped = data.translate(_SHAPES)
    return shaped.count(b" a") + shaped.startswith(b"a")


class ContentTooComplex(DocumentRejected):
    """A page's drawing nests forms too deep or runs too many operators to be worth starting."""


@dataclass(frozen=True)
class _Cost:
    operators: int
    #: How many levels of forms drawing forms lie below (0: draws no form).
    height: int


class _Measure:
    """The cost of drawing content streams in one document, each form measured once."""

    def __init__(self, document: pymupdf.Document, max_nesting: int, count_operators: bool = True) -> None:
        self.document = document
        self.max_nesting = max_nesting
        #: Without it, no content stream is read: every form a resource dictionary names counts as drawn once,
        #: which bounds the nesting from above at the cost of reading object dictionaries only.
        self.count_operators = count_operators
        self.streams: dict[int, tuple[int, dict[bytes, int]]] = {}
        self.forms: dict[tuple[int, str], _Cost] = {}

    def _stream(self, xref: int) -> tuple[int, dict[bytes, int]]:
        """(operators, how often each XObject name is drawn) of one content stream."""
        if xref not in self.streams:
            try:
                data = self.document.xref_stream(xref) or b""
            except Exception:  # noqa: BLE001  (MuPDF's errors have no common base we can name)
                data = b""  # a stream that cannot be decoded draws nothing: MuPDF skips it too
            if b"ID" in data:
                data = _INLINE_IMAGES.sub(b" ", data)
            draws: dict[bytes, int] = {}
            for name in _DRAW_XOBJECT.findall(data):
                draws[name] = draws.get(name, 0) + 1
            self.streams[xref] = (_operators(data), draws)
        return self.streams[xref]

    def _xobjects(self, xref: int, inherited: str) -> str:
        """The XObject dictionary (as PDF text) the object `xref` draws with: its own, else `inherited`."""
        kind, value = self.document.xref_get_key(xref, "Resources/XObject")
        if kind == "xref":
            return self.document.xref_object(int(value.split()[0]), compressed=True)
        if kind == "dict":
            return value
        return "" if self.document.xref_get_key(xref, "Resources")[0] != "null" else inherited

    def draw(self, stream_xrefs: list[int], xobjects: str, depth: int) -> _Cost:
        """The cost of drawing `stream_xrefs` with the XObject dictionary `xobjects`, `depth` forms deep."""
        if depth > self.max_nesting:
            raise ContentTooComplex(f"forms inside forms nest more than {self.max_nesting} deep")
        operators, height = 0, 0
        names = {name.encode(): int(xref) for name, xref in _NAMED_REFERENCE.findall(xobjects)}
        if self.count_operators:
            streams = [self._stream(stream) for stream in stream_xrefs]
        elif depth and self.document.xref_get_key(stream_xrefs[0], "Resources")[0] == "null":
            streams = []  # a form drawing with its page's resources: taken as drawing no form of them
        else:
            streams = [(0, dict.fromkeys(names, 1))]
        for count, draws in streams:
            operators += count
            for name, times in draws.items():
                if name in names:
                    form = self._form(names[name], xobjects, depth + 1)
                    operators += times * (FORM_DRAW_COST + form.operators)
                    height = max(height, form.height + 1)
        return _Cost(operators, height)

    def _form(self, xref: int, inherited: str, depth: int) -> _Cost:
        if self.document.xref_get_key(xref, "Subtype")[1] != "/Form" or not self.document.xref_is_stream(xref):
            return _Cost(1, 0)  # an image: drawn at once
        xobjects = self._xobjects(xref, inherited)
        key = (xref, xobjects)
        if key not in self.forms:
            self.forms[key] = self.draw([xref], xobjects, depth)
        cost = self.forms[key]
        if depth + cost.height > self.max_nesting:
            raise ContentTooComplex(f"forms inside forms nest more than {self.max_nesting} deep")
        return cost

    def page(self, xref: int) -> _Cost:
        """The cost of drawing the page whose object is `xref`."""
        kind, value = self.document.xref_get_key(xref, "Contents")
        streams = [int(number) for number in _REFERENCE.findall(value)] if kind in ("xref", "array") else []
        holder, xobjects = xref, ""
        for _ in range(MAX_TREE_DEPTH):
            if self.document.xref_get_key(holder, "Resources")[0] != "null":
                xobjects = self._xobjects(holder, "")
                break
            kind, parent = self.document.xref_get_key(holder, "Parent")
            if kind != "xref":
                break
            holder = int(parent.split()[0])
        return self.draw([stream for stream in streams if self.document.xref_is_stream(stream)], xobjects, 0)


def check_content(document: pymupdf.Document) -> None:
    """Refuse (ContentTooComplex) a PDF with a page that nests forms deeper than MAX_CONTENT_NESTING or draws more
    than MAX_CONTENT_OPERATORS operators (0: no limit, and no content stream read); nothing is rendered to tell."""
    settings = get_settings()
    measure = _Measure(document, settings.max_content_nesting, count_operators=settings.max_content_operators > 0)
    for number in range(document.page_count):
        try:
            cost = measure.page(document.page_xref(number))
        except ContentTooComplex as error:
            raise ContentTooComplex(f"page {number + 1} is too complex to read: {error}") from None
        except Exception:  # noqa: BLE001  (MuPDF's errors have no common base we can name)
            # A damaged page tree or content stream is not measured: reading the page reports it in its own words
            # later, and one broken piece costs that piece, not the document.
            logger.info("page %s could not be measured at inspect", number + 1, exc_info=True)
            continue
        if settings.max_content_operators and cost.operators > settings.max_content_operators:
            raise ContentTooComplex(
                f"page {number + 1} is too complex to read: drawing it takes about {cost.operators:,} operations"
                f" (at most {settings.max_content_operators:,})"
            )
