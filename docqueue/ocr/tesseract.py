"""Reading one page image with Tesseract's library (tesserocr), in a PDF pool process.

The library, not the `tesseract` command: a command run loads its models
again for every page and reads the page from a file; here a PDF process
loads them once for a range of pages (`engines_loaded`) and hands over each
rendered page in memory, which reads a 300-dpi page in about half the CPU
time (BENCHMARKS.md, figure 3). The library in tesserocr's wheel is built
without OpenMP, so a page is read on one thread (PITFALLS: Tesseract's
OpenMP threads thrash on few cores); pages run in parallel processes
instead. Recognition stops at a per-page deadline; layout analysis before
it has none, and the stage's time limit, which kills the PDF process,
bounds that.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from docqueue.errors import StageError
from docqueue.settings import get_settings

if TYPE_CHECKING:
    import pymupdf
    import tesserocr

#: Orientation guesses below this confidence are ignored: too little text to tell.
MIN_ORIENTATION_CONFIDENCE = 2.0


class OcrError(StageError):
    """Tesseract could not read a page; the message says which and why."""


@dataclass(frozen=True)
class Word:
    """A word Tesseract read, with its box in pixels of the image it was given."""

    left: int
    top: int
    width: int
    height: int
    text: str
    #: (block, paragraph, line) numbers: words of one line share them.
    line: tuple[int, int, int]
    #: Tesseract's confidence in the word, 0 to 100.
    confidence: float


#: The languages that stand for orientation detection alone: Tesseract's model of orientation and script.
ORIENTATION = "osd"


#: This process's engines by language list, loaded for a range of pages (`engines_loaded`).
_engines: dict[str, tesserocr.PyTessBaseAPI] = {}


@contextmanager
def engines_loaded() -> Iterator[None]:
    """Keep the engines a block loads (one per language list) for its pages, then free their models.

    Loading takes ~0.08 s of CPU a model; holding them would keep ~100 MB
    in each PDF process between OCR tasks, whatever it does next.
    """
    try:
        yield
    finally:
        for engine in _engines.values():
            engine.End()
        _engines.clear()


def _engine(languages: str) -> tesserocr.PyTessBaseAPI:
    """Tesseract for `languages` (ORIENTATION: detection alone), its models loaded once in an `engines_loaded` block."""
    import tesserocr

    if languages in _engines:
        return _engines[languages]
    folder = get_settings().tessdata_prefix
    layout = tesserocr.PSM.OSD_ONLY if languages == ORIENTATION else tesserocr.PSM.AUTO
    try:
        engine = tesserocr.PyTessBaseAPI(path=folder, lang=languages, psm=layout)
    except RuntimeError:
        raise OcrError(
            f"Tesseract has no data for a language in {languages} in {folder} "
            "(TESSDATA_PREFIX; OCR_LANGUAGES names the languages)"
        ) from None
    _engines[languages] = engine
    return engine


def _show(engine: tesserocr.PyTessBaseAPI, pixmap: pymupdf.Pixmap, dpi: int) -> None:
    # A grey pixmap's samples are the image Tesseract wants: one byte a pixel, `stride` bytes a row.
    engine.SetImageBytes(pixmap.samples, pixmap.width, pixmap.height, 1, pixmap.stride)
    engine.SetSourceResolution(dpi)


def detect_rotation(pixmap: pymupdf.Pixmap, dpi: int) -> int:
    """Degrees (0, 90, 180, 270) to turn the grey image clockwise to read it upright; 0 when Tesseract cannot tell."""
    engine = _engine(ORIENTATION)
    _show(engine, pixmap, dpi)
    try:
        found = engine.DetectOrientationScript()
    except RuntimeError:
        return 0  # Too few characters to tell (a blank or a picture): leave it as it is.
    finally:
        engine.Clear()
    if not found or found["orient_conf"] < MIN_ORIENTATION_CONFIDENCE:
        return 0
    # Tesseract reports the page's orientation counter-clockwise; turning it back is the opposite way.
    return (360 - found["orient_deg"]) % 360


def read_words(pixmap: pymupdf.Pixmap, languages: str, dpi: int, timeout: float, what: str) -> list[Word]:
    """The words Tesseract reads from the grey image, in reading order; OcrError past `timeout` seconds."""
    engine = _engine(languages)
    _show(engine, pixmap, dpi)
    began = time.monotonic()
    try:
        if not engine.Recognize(timeout=max(1, round(timeout * 1000))):
            if time.monotonic() - began >= timeout:
                raise OcrError(f"{what} took longer than the {timeout:g} s per-page limit and was stopped")
            raise OcrError(f"{what}: Tesseract could not read the page")
        tsv = engine.GetTSVText(0)
    finally:
        engine.Clear()
    words = []
    for line in tsv.splitlines():
        fields = line.split("\t")
        # level 5 rows are words; the others are the page, blocks, paragraphs and lines around them.
        if len(fields) < 12 or fields[0] != "5" or not fields[11].strip():
            continue
        block, paragraph, line_number = int(fields[2]), int(fields[3]), int(fields[4])
        left, top, width, height = (int(value) for value in fields[6:10])
        line_key = (block, paragraph, line_number)
        words.append(Word(left, top, width, height, fields[11].strip(), line_key, float(fields[10])))
    return words


def text_of(words: list[Word]) -> str:
    """The words as text: a line per line Tesseract found, a blank line between blocks."""
    lines: list[str] = []
    previous: tuple[int, int, int] | None = None
    for word in words:
        if previous is None or word.line != previous:
            if previous is not None and word.line[0] != previous[0]:
                lines.append("")
            lines.append(word.text)
        else:
            lines[-1] += " " + word.text
        previous = word.line
    return "\n".join(lines)
