"""The PDF process pool: where every PyMuPDF call runs, and how a stage waits for it.

PyMuPDF must not run on several threads, and a hostile file can hang inside
MuPDF's C code where no Python time limit reaches. So stage work runs in a
few long-lived single-threaded processes (`pdf_processes`: starting and
stopping them). A task that exceeds its time limit has its process killed
and replaced.

Each process runs under `pool_guard`: a hard memory limit, and only our own
errors, in plain words, come back from it.
"""

from __future__ import annotations

import concurrent.futures
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import CancelledError
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from contextlib import ExitStack, contextmanager
from typing import TypeVar

import pebble

from docqueue.errors import StageTimeout, TransientError
from docqueue.runtime import pool_guard, worker_shutdown
from docqueue.runtime.pdf_processes import process_pool
from docqueue.runtime.pool_share import PoolShare, Preempted, Seat
from docqueue.runtime.worker_shutdown import WorkerStopping
from docqueue.settings import get_settings

T = TypeVar("T")

#: How often a waiting stage looks at whether it must stop (worker shutdown, lost lease) or its task was lost.
STOP_POLL_SECONDS = 0.2
#: How long a task pebble counts as running may be without a live process (none said it started, or the one
#: that did is gone) before it is lost. pebble itself ends the task of a process that died within a second.
LOST_AFTER_SECONDS = 10.0


class StageStopped(Exception):
    """The stage was stopped from outside (its lease was lost) and its process killed."""


class StageProcessDied(TransientError):
    """The pool process died mid-task (a crash inside MuPDF, or killed by the OS)."""


class _GuardedTask:
    """A task in the pool run under `pool_guard`, with the file its process reports a fatal error in."""

    def __init__(
        self, future: pebble.ProcessFuture, report_path: str, timeout: float, seat: Seat | None = None
    ) -> None:
        self.future = future
        self.report_path = report_path
        self.timeout = timeout
        self.seat = seat
        self._orphaned_since: float | None = None

    def lost(self) -> bool:
        """Whether pebble lost the task: it counts it as running, but no live process runs it.

        A process pebble kills for a cancelled task can take the next task
        with it (pebble issue #153); that task's future would never end, and
        its stage would wait for its whole time limit and then fail for good.
        Each task's process writes its pid as it starts (`pool_guard.run_guarded`).
        """
        if not self.future.running():
            return False
        pid = pool_guard.started_pid(self.report_path)
        if pid is not None and _alive(pid):
            self._orphaned_since = None
            return False
        self._orphaned_since = self._orphaned_since or time.monotonic()
        return time.monotonic() - self._orphaned_since > LOST_AFTER_SECONDS

    def result(self, check: Callable[[], None] = lambda: None):
        """Wait for the task, calling `check()` every STOP_POLL_SECONDS (it may cancel the task and raise).

        The task's result, or our own error for whatever ended it; a lost
        task is cancelled and fails with what its process reported before
        exiting, else as a transient StageProcessDied.
        """
        while not concurrent.futures.wait([self.future], timeout=STOP_POLL_SECONDS).done:
            if self.seat is not None and self.seat.preempted.is_set():
                self.future.cancel()  # pebble kills the process running a cancelled task
                raise Preempted("another user's work waited for this PDF process: the work resumes later")
            check()
            if self.lost():
                self.future.cancel()
                reported = pool_guard.read_report(self.report_path)
                if reported is not None:
                    raise reported from None
                raise StageProcessDied("the processing subprocess was lost before it finished the stage")
        try:
            return self.future.result()
        except FutureTimeout:
            raise StageTimeout.after(self.timeout) from None
        except pebble.ProcessExpired as error:
            reported = pool_guard.read_report(self.report_path)
            if reported is not None:
                raise reported from None
            raise StageProcessDied(f"the processing subprocess died (exit code {error.exitcode})") from None
        except BrokenProcessPool:
            # pebble gives up the whole pool when a process dies before its task started; the next call starts a new one.
            raise StageProcessDied("the processing subprocess died before it started the stage") from None


def _alive(pid: int) -> bool:
    """Whether process `pid` runs: it exists and is not a zombie (dead, not yet reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return True  # no /proc here: existing is all we can know


#: Who holds this process's pool processes, and who waits for one (tasks go to the pool only once seated).
_share = PoolShare(lambda: get_settings().pdf_worker_processes)


def free_processes() -> int:
    """How many tasks handed to the pool now would start at once rather than wait for a process."""
    return _share.free_processes()


def has_free_process() -> bool:
    """Whether a task handed to the pool now would start at once rather than wait for a process."""
    return free_processes() > 0


@contextmanager
def _guarded(
    function: Callable, args: tuple, timeout: float, owner: int | None, check: Callable[[], None] = lambda: None
) -> Iterator[_GuardedTask]:
    """Seat the task (`pool_share`: waiting while `check()` does not raise), then run it in the pool."""
    seat = Seat(owner)
    _share.take(seat, check)
    descriptor, report_path = tempfile.mkstemp(prefix="docqueue-pool-report-")
    os.close(descriptor)
    try:
        future = process_pool().schedule(pool_guard.run_guarded, args=(report_path, function, *args), timeout=timeout)
        yield _GuardedTask(future, report_path, timeout, seat)
    finally:
        _share.leave(seat)
        pool_guard.forget(report_path)


def _stop_check(stop: threading.Event | None, confirm_stop: Callable[[], bool]) -> Callable[[list], None]:
    """What waiting tasks ask every STOP_POLL_SECONDS: `check(tasks)` cancels them all and raises when the worker
    is shutting down (WorkerStopping) or `stop` is set and `confirm_stop()` agrees (StageStopped); if it does not
    agree, `stop` is cleared and the wait goes on."""

    def check(tasks: list) -> None:
        if worker_shutdown.is_stopping():
            for task in tasks:
                task.future.cancel()  # pebble kills the process running a cancelled task
            raise WorkerStopping("the worker is shutting down")
        if stop is not None and stop.is_set():
            if confirm_stop():
                for task in tasks:
                    task.future.cancel()
                raise StageStopped("stopped: the job's lease was lost (cancelled or taken over)")
            stop.clear()

    return check


def run_in_pdf_process(
    function: Callable[..., T],
    *args,
    timeout: float,
    stop: threading.Event | None = None,
    confirm_stop: Callable[[], bool] = lambda: True,
    owner: int | None = None,
) -> T:
    """Run `function(*args)` in a pool process and wait; kill it after `timeout` seconds.

    Whatever it raises arrives as one of our own errors (see `pool_guard`).
    The task is also killed, and the wait ends, when the worker begins
    shutting down (WorkerStopping: its item is handed back), once `stop`
    is set and `confirm_stop()` agrees (StageStopped: the lease is gone), or
    when user `owner`'s share of the pool goes to another user's waiting
    work (`pool_share.Preempted`, a WorkerStopping: hand the item back).
    """
    check = _stop_check(stop, confirm_stop)
    with _guarded(function, args, timeout, owner, lambda: check([])) as task:
        return task.result(lambda: check([task]))


def run_in_pdf_processes(
    function: Callable[..., T],
    argument_lists: list[tuple],
    *,
    timeout: float,
    stop: threading.Event | None = None,
    confirm_stop: Callable[[], bool] = lambda: True,
    owner: int | None = None,
) -> list[T]:
    """Run `function(*arguments)` for each of `argument_lists` in the pool at once; their results, in order.

    Each call may take `timeout` seconds and runs as `run_in_pdf_process`
    runs one. The first error (in order) is raised once every call has
    ended or been cancelled: running ones finish, so nothing is left
    writing; a stop (shutdown, lost lease) cancels them all at once.
    """
    check = _stop_check(stop, confirm_stop)

    def seating() -> None:
        # A task seated already that is preempted while the next waits for its seat gives way with all of them.
        check(tasks)
        if any(task.seat.preempted.is_set() for task in tasks):
            for task in tasks:
                task.future.cancel()
            raise Preempted("another user's work waited for these PDF processes: the work resumes later")

    with ExitStack() as stack:
        tasks: list[_GuardedTask] = []
        for arguments in argument_lists:
            tasks.append(stack.enter_context(_guarded(function, arguments, timeout, owner, seating)))
        results: list[T] = []
        error: BaseException | None = None
        for task in tasks:
            try:
                results.append(task.result(lambda: check(tasks)))
            except CancelledError:
                pass
            except (WorkerStopping, StageStopped) as stopped:
                if not isinstance(stopped, Preempted):
                    raise  # the check cancelled every task
                error = error or stopped  # this one alone gave way: the others finish first
            except BaseException as raised:  # noqa: BLE001  (re-raised below, after the rest have ended)
                error = error or raised
        if error is not None:
            raise error
        return results
