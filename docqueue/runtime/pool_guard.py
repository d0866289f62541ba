"""Guarding the PDF/OCR pool's processes: a memory ceiling, and errors that can cross back.

Runs inside each pool process: `limit_memory` from the pool's initializer,
`run_guarded` around every task, `reading` around each page a stage reads.
Rules:

- Only our own picklable errors leave a pool process (`docqueue.errors`),
  with a message in the product's words ("page 2 cannot be read: the page
  tree is cyclic"). MuPDF's own exceptions cannot be pickled (they would
  reach the worker as a `TypeError` about pickling), and their text names
  temporary paths and library internals. The original class, text and
  traceback travel in the error's `detail`, for the worker's log and Sentry.
- Each error is classified: the file's fault is permanent; MuPDF's
  "try later" and "abort", and a lost database connection, are transient.
- Each process has a hard memory limit (`PDF_PROCESS_MEMORY_MB`, as
  RLIMIT_AS, inherited by any program it starts). A task that hits it fails
  with "needs more than 1 GB to read page 1", and its process exits so a
  fresh one replaces it: nothing of a half-failed allocation is kept. As an
  exiting process sends no result, it leaves its error in a report file
  that the parent reads (`read_report`).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import pickle
import re
import resource
import traceback
from contextlib import contextmanager
from typing import Callable, Iterator, TypeVar

from docqueue.errors import DocumentRejected, StageError, TransientError, failure_kind
from docqueue.settings import get_settings
from docqueue.statuses import FailureKind

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Exit status of a process that gave up after running out of its memory cap.
MEMORY_EXIT_CODE = 86

# MuPDF's errors read "code=N: text", both its own `FzError*` classes and the RuntimeError PyMuPDF raises.
_MUPDF_MESSAGE = re.compile(r"code=(\d+): (.*)", re.DOTALL)

# MuPDF's error codes (fz_error_type, by FzError* class) -> the reason in our words, and whether a retry can pass.
_MUPDF_REASONS: dict[int, tuple[str, FailureKind]] = {
    0: ("it is damaged", FailureKind.PERMANENT),  # FzErrorNone
    1: ("it is damaged", FailureKind.PERMANENT),  # FzErrorGeneric
    2: ("the system could not read it", FailureKind.TRANSIENT),  # FzErrorSystem (I/O; memory is handled apart)
    3: ("a decoder failed on its data", FailureKind.PERMANENT),  # FzErrorLibrary
    4: ("it refers to data that does not exist", FailureKind.PERMANENT),  # FzErrorArgument
    5: ("it exceeds a limit of the PDF reader", FailureKind.PERMANENT),  # FzErrorLimit
    6: ("it uses a feature docqueue cannot read", FailureKind.PERMANENT),  # FzErrorUnsupported
    7: ("its structure is damaged", FailureKind.PERMANENT),  # FzErrorFormat
    8: ("its contents have syntax errors", FailureKind.PERMANENT),  # FzErrorSyntax
    9: ("its data was not available yet", FailureKind.TRANSIENT),  # FzErrorTrylater
    10: ("reading it was interrupted", FailureKind.TRANSIENT),  # FzErrorAbort
    11: ("it is damaged and had to be repaired", FailureKind.PERMANENT),  # FzErrorRepaired
}
_MUPDF_CLASS_CODES = {
    "FzErrorNone": 0, "FzErrorGeneric": 1, "FzErrorSystem": 2, "FzErrorLibrary": 3, "FzErrorArgument": 4,
    "FzErrorLimit": 5, "FzErrorUnsupported": 6, "FzErrorFormat": 7, "FzErrorSyntax": 8, "FzErrorTrylater": 9,
    "FzErrorAbort": 10, "FzErrorRepaired": 11, "FzErrorBase": 1,
}  # fmt: skip

# MuPDF texts worth a more precise reason than their code's.
_KNOWN_TEXTS = {
    "cycle in page tree": "the page tree is cyclic",
    "cycle in resources": "its resources refer to themselves",
    "non-page object in page tree": "the page tree contains something that is not a page",
}
# glibc's `malloc_trim`; None with another C library (musl, macOS), whose memory is then left as it is.
_malloc_trim = getattr(ctypes.CDLL(None), "malloc_trim", None)
_OUT_OF_MEMORY = re.compile(r"\b(malloc|realloc|calloc)\b.*\bfailed\b|out of memory", re.IGNORECASE)


class MemoryCapExceeded(DocumentRejected):
    """The task needed more memory than its process may have: permanent, the file would need it again."""


def memory_cap_text() -> str:
    """The memory cap in words: "1 GB", "1.5 GB", "800 MB"."""
    megabytes = get_settings().pdf_process_memory_mb
    return f"{megabytes / 1024:g} GB" if megabytes >= 1024 else f"{megabytes} MB"


def limit_memory() -> None:
    """Cap this process's address space at PDF_PROCESS_MEMORY_MB (call once imports are done)."""
    cap = get_settings().pdf_process_memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))


def _detail(error: BaseException) -> str:
    return "".join(traceback.format_exception(type(error), error, error.__traceback__))


def with_detail(error: StageError, cause: BaseException) -> StageError:
    """`error`, carrying `cause`'s class, text and traceback for the log (never shown to the user)."""
    # Kept in the exception's __dict__, which pickling carries to the worker.
    error.detail = _detail(cause)
    return error


def _is_out_of_memory(error: BaseException) -> bool:
    return isinstance(error, MemoryError) or bool(_OUT_OF_MEMORY.search(str(error)))


def _mupdf_code(error: BaseException) -> tuple[int, str] | None:
    """(MuPDF error code, MuPDF's text) if `error` came from MuPDF, else None."""
    match = _MUPDF_MESSAGE.match(str(error))
    if match:
        return int(match.group(1)), match.group(2).strip()
    code = _MUPDF_CLASS_CODES.get(type(error).__name__)
    return (code, str(error)) if code is not None else None


def translate(error: BaseException, what: str = "the file") -> BaseException:
    """`error` as one of our picklable errors with a plain message about `what` ("page 2", "the file").

    Our own errors pass through unchanged, and so does any exception class
    the caller reacts to by type that is not MuPDF's (such as LeaseLost).
    """
    if isinstance(error, StageError):
        return error
    if _is_out_of_memory(error):
        return with_detail(MemoryCapExceeded(f"the file needs more than {memory_cap_text()} to read {what}"), error)
    mupdf = _mupdf_code(error)
    if mupdf is not None:
        code, text = mupdf
        reason, kind = _MUPDF_REASONS.get(code, _MUPDF_REASONS[1])
        reason = next((plain for known, plain in _KNOWN_TEXTS.items() if known in text), reason)
        error_class = TransientError if kind is FailureKind.TRANSIENT else DocumentRejected
        return with_detail(error_class(f"{what} cannot be read: {reason}"), error)
    if type(error).__module__.startswith("docqueue."):
        return error  # ours, picklable, and matched by type upstream (LeaseLost)
    if failure_kind(error) is FailureKind.TRANSIENT:
        return with_detail(TransientError("a temporary problem reaching the database interrupted the work"), error)
    return with_detail(StageError(f"{what} could not be processed because of an internal error"), error)


@contextmanager
def reading(what: str) -> Iterator[None]:
    """Turn any error raised inside into our own, naming `what` is being read ("page 3")."""
    try:
        yield
    except Exception as error:
        translated = translate(error, what)
        if translated is error:
            raise
        raise translated from None


def read_piece(what: str, read: Callable[[], T]) -> tuple[T | None, str | None]:
    """`(read(), None)`, or `(None, reason)` when the file's own data there is broken ("page 2 cannot be read:
    it exceeds a limit of the PDF reader").

    For a piece of a file whose loss should cost that piece only (a page's
    content stream, one image), as readers do with real files from bug
    reports. Running out of memory, transient errors and our own crashes
    still raise: they are not the piece's fault. MuPDF's own text goes to the log.
    """
    try:
        with reading(what):
            return read(), None
    except MemoryCapExceeded:
        raise
    except DocumentRejected as broken:
        logger.warning("skipped %s: %s\n%s", what, broken, getattr(broken, "detail", ""))
        return None, str(broken)


def run_guarded(report_path: str, function: Callable, *args):
    """Run `function(*args)` in this pool process; only our own errors may leave it.

    After running out of memory the process writes its error to
    `report_path` and exits, to be replaced by a fresh one. After every
    task the memory it used goes back to the system (`_release_memory`).
    """
    mark_started(report_path)
    try:
        return function(*args)
    except Exception as error:
        translated = translate(error)
        if isinstance(translated, MemoryCapExceeded):
            with open(report_path, "wb") as report:
                pickle.dump(translated, report)
            os._exit(MEMORY_EXIT_CODE)
        if translated is error:
            raise
        raise translated from None
    finally:
        _release_memory()


def _release_memory() -> None:
    """Empty MuPDF's cache and hand the heap's free pages back to the system, after a task.

    MuPDF's cache of decoded images and fonts only helps within one
    document, and would otherwise hold up to 256 MB of the previous ones.
    glibc keeps what a task freed for the process's next allocations, so a
    process that read a big document would go on holding its peak while it
    idles or reads small ones: `malloc_trim` returns it.
    """
    import pymupdf

    pymupdf.TOOLS.store_shrink(100)
    if _malloc_trim is not None:
        _malloc_trim(0)


def _started_path(report_path: str) -> str:
    return report_path + ".started"


def mark_started(report_path: str, pid: int | None = None) -> None:
    """Say that process `pid` (this one) has started the task of `report_path` (`started_pid` reads it)."""
    with open(_started_path(report_path), "w") as started:
        started.write(str(pid or os.getpid()))


def started_pid(report_path: str) -> int | None:
    """The pid of the pool process that started the task of `report_path`; None until one has."""
    try:
        with open(_started_path(report_path)) as started:
            return int(started.read() or 0) or None
    except FileNotFoundError:
        return None


def forget(report_path: str) -> None:
    """Remove the files of the task of `report_path`."""
    for path in (report_path, _started_path(report_path)):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def read_report(report_path: str) -> BaseException | None:
    """The error a pool process left in `report_path` before exiting, if any."""
    try:
        with open(report_path, "rb") as report:
            data = report.read()
    except FileNotFoundError:
        return None
    return pickle.loads(data) if data else None
