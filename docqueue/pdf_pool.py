"""The PDF process pool: where every PyMuPDF call runs.

PyMuPDF must not run on several threads, and a hostile file can hang inside
MuPDF's C code where no Python time limit reaches. So stage work runs in a
few long-lived single-threaded processes (pebble), each of which imports
PyMuPDF once (0.9 s, ~140 MB). A task that exceeds its time limit has its
process killed and replaced.

The processes are spawned, not forked: the worker process runs threads, and
a forkserver would die on the PaaS's SIGTERM and take the pool's view of
its children with it.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from typing import Callable, TypeVar

import pebble

from docqueue.errors import StageError, TransientError
from docqueue.settings import get_settings
from docqueue.worker_shutdown import wait_unless_stopping

T = TypeVar("T")


class StageTimeout(StageError):
    """The stage ran past its time limit and its process was killed: permanent, as the file would hang again."""


class StageProcessDied(TransientError):
    """The pool process died mid-task (a crash inside MuPDF, or killed by the OS)."""


def _prepare_pdf_process() -> None:
    """Set up a new pool process: ignore shutdown signals, import the stages.

    A PaaS signals every process in the dyno on deploy; if pool processes
    died then, the stage they run would fail instead of finishing during the
    worker's graceful shutdown. The pool stops them itself when it closes.
    """
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    import pymupdf  # noqa: F401  (0.9 s and ~140 MB: pay the import once, up front)

    import docqueue.pipeline  # noqa: F401  (every stage's `run`, ready to be called)


_pool: pebble.ProcessPool | None = None
_pool_pid: int | None = None
_lock = threading.Lock()


def _get_pool() -> pebble.ProcessPool:
    global _pool, _pool_pid
    with _lock:
        if _pool is None or _pool_pid != os.getpid() or not _pool.active:
            _pool = pebble.ProcessPool(
                max_workers=get_settings().pdf_worker_processes,
                initializer=_prepare_pdf_process,
                context=multiprocessing.get_context("spawn"),
            )
            _pool_pid = os.getpid()
        return _pool


def warm_pdf_pool() -> None:
    """Start the pool's processes now, in the background, so the first stage does not wait ~2 s for them."""
    pool = _get_pool()
    for _ in range(get_settings().pdf_worker_processes):
        pool.schedule(os.getpid)


def run_in_pdf_process(function: Callable[..., T], *args, timeout: float) -> T:
    """Run `function(*args)` in a pool process and wait; kill it after `timeout` seconds.

    Raises WorkerStopping (and kills the task) if the worker starts shutting down meanwhile.
    """
    future = _get_pool().schedule(function, args=args, timeout=timeout)
    try:
        return wait_unless_stopping(future)
    except FutureTimeout:
        raise StageTimeout(f"stopped after the {timeout:g} s time limit") from None
    except pebble.ProcessExpired as error:
        raise StageProcessDied(f"the processing subprocess died (exit code {error.exitcode})") from None
    except BrokenProcessPool:
        # pebble gives up the whole pool when a process dies before its task started; the next call starts a new one.
        raise StageProcessDied("the processing subprocess died before it started the stage") from None


def shutdown_pdf_pool(timeout: float = 10) -> None:
    """Let the pool's processes finish their tasks and exit; kill what is left after `timeout` seconds.

    The next call to run a stage starts a new pool.
    """
    global _pool
    with _lock:
        if _pool is not None and _pool_pid == os.getpid():
            _pool.close()
            try:
                _pool.join(timeout=timeout)
            except TimeoutError:
                # They ignore SIGTERM (see above), so pebble's stop ends in SIGKILL.
                _pool.stop()
                _pool.join()
        _pool = None
