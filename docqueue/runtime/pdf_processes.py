"""The PDF pool's processes: starting them, what each does first, stopping them.

Each is a long-lived single-threaded process (pebble) that imports PyMuPDF
once (~0.7 s, ~35 MB with its layout package blocked: `docqueue/__init__.py`).

The processes are spawned, not forked: the worker process runs threads, and
a forkserver would die on the PaaS's SIGTERM and take the pool's view of
its children with it.

Running a task in them and waiting for it: `pdf_pool`.
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import signal
import threading

import pebble

from docqueue.connections import ProcessRole, set_process_role
from docqueue.runtime import pool_guard
from docqueue.settings import get_settings

#: Modules each new pool process imports before its first task (`preload_in_pdf_processes`).
_preloaded: list[str] = []


def preload_in_pdf_processes(*modules: str) -> None:
    """Have every pool process started from now on import `modules` up front.

    The pool runs whatever functions it is handed and knows no stage; its
    user names what is worth importing before the first task (the worker:
    the pipeline, so every stage's `run` is ready to be called).
    """
    _preloaded.extend(name for name in modules if name not in _preloaded)


def prepare_pdf_process(preload: tuple[str, ...]) -> None:
    """Set up a new pool process: ignore shutdown signals, budget its connections, import what its user asked for,
    cap its memory.

    A PaaS signals every process in the dyno on deploy; if pool processes
    died then, the stage they run would fail instead of finishing during the
    worker's graceful shutdown. The pool stops them itself when it closes.
    """
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    set_process_role(ProcessRole.PDF)
    import pymupdf  # noqa: F401  (~0.7 s: pay the import once, up front)

    for name in preload:
        importlib.import_module(name)
    pool_guard.limit_memory()


_pool: pebble.ProcessPool | None = None
_pool_pid: int | None = None
_lock = threading.Lock()


def process_pool() -> pebble.ProcessPool:
    """This process's pool, started anew when there is none (or it broke, or it is a parent's)."""
    global _pool, _pool_pid
    with _lock:
        if _pool is None or _pool_pid != os.getpid() or not _pool.active:
            _pool = pebble.ProcessPool(
                max_workers=get_settings().pdf_worker_processes,
                initializer=prepare_pdf_process,
                initargs=(tuple(_preloaded),),
                context=multiprocessing.get_context("spawn"),
            )
            _pool_pid = os.getpid()
        return _pool


def warm_pdf_pool() -> None:
    """Start the pool's processes now, in the background, so the first stage does not wait ~2 s for them."""
    pool = process_pool()
    for _ in range(get_settings().pdf_worker_processes):
        pool.schedule(os.getpid)


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
