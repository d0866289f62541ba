"""Running the `tesseract` command on one page image.

Tesseract gets an uncompressed PNM (PNG-encoding a 300-dpi page costs
more than rendering it) in a temporary file (it reads a page from stdin
~100 ms slower than from a file: a fifth of reading it) and one thread (`OMP_THREAD_LIMIT=1`: its
OpenMP threads thrash on few cores; pages run in parallel processes
instead). Each call has a time limit; a Tesseract past it is killed with
its whole process group, and it dies with the process that started it.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import tempfile
from dataclasses import dataclass

from docqueue.errors import StageError

#: Orientation guesses below this confidence are ignored: too little text to tell.
MIN_ORIENTATION_CONFIDENCE = 2.0
_PR_SET_PDEATHSIG = 1


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


_libc = ctypes.CDLL(None, use_errno=True)


def _die_with_parent() -> None:
    # Runs in the child before exec: if the PDF process that started it is killed, Tesseract goes too.
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _run(arguments: list[str], image: bytes, timeout: float, what: str) -> str:
    """Run tesseract on `image` (a PNM); its stdout. OcrError on a timeout or a failure."""
    with tempfile.NamedTemporaryFile(prefix="docqueue-ocr-", suffix=".pnm") as page:
        page.write(image)
        page.flush()
        process = subprocess.Popen(
            ["tesseract", page.name, "stdout", *arguments],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, "OMP_THREAD_LIMIT": "1"},
            start_new_session=True,
            # Safe here: PDF pool processes run no other threads that could hold a lock across the fork.
            preexec_fn=_die_with_parent,  # noqa: PLW1509
        )
        try:
            out, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            raise OcrError(f"{what} took longer than the {timeout:g} s per-page limit and was stopped") from None
    if process.returncode != 0:
        message = err.decode(errors="replace").strip().splitlines()
        if any("Failed loading language" in line for line in message):
            raise OcrError(f"{what}: Tesseract has no data for a language in OCR_LANGUAGES ({arguments[1]})")
        raise OcrError(f"{what}: Tesseract failed (exit code {process.returncode})")
    return out.decode(errors="replace")


def detect_rotation(image: bytes, dpi: int, timeout: float, what: str) -> int:
    """Degrees (0, 90, 180, 270) to turn the image clockwise to read it upright; 0 when Tesseract cannot tell."""
    try:
        report = _run(["--psm", "0", "--dpi", str(dpi)], image, timeout, what)
    except OcrError as error:
        if "per-page limit" in str(error):
            raise
        return 0  # Too few characters to tell (a blank or a picture): leave it as it is.
    fields = dict(line.split(":", 1) for line in report.splitlines() if ":" in line)
    try:
        rotate = int(fields["Rotate"].strip())
        confidence = float(fields["Orientation confidence"].strip())
    except (KeyError, ValueError):
        return 0
    return rotate % 360 if confidence >= MIN_ORIENTATION_CONFIDENCE else 0


def read_words(image: bytes, languages: str, dpi: int, timeout: float, what: str) -> list[Word]:
    """The words Tesseract reads from `image`, in reading order."""
    tsv = _run(["-l", languages, "--dpi", str(dpi), "tsv"], image, timeout, what)
    words = []
    for line in tsv.splitlines()[1:]:
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
