"""Stopping a running stage: lost-lease wake-ups, the PDF process killed or let finish, crash tracebacks, worker ids."""

from __future__ import annotations

import subprocess
import threading
import time

import pytest

from docqueue.errors import StageError
from docqueue.runtime import lease_watch


def test_a_lost_lease_wakes_only_stages_that_were_watching_before_the_check():
    with lease_watch.watching(7) as lost:
        checked_before_the_claim = time.monotonic() - 10
        lease_watch.signal_lost([7], checked_before_the_claim)
        assert not lost.is_set()
        lease_watch.signal_lost([7], time.monotonic())
        assert lost.is_set()


def test_a_stopped_stage_has_its_pdf_process_killed(test_env):
    from docqueue.runtime.pdf_pool import StageStopped, run_in_pdf_process
    from docqueue.runtime.pdf_processes import shutdown_pdf_pool

    stop = threading.Event()
    threading.Timer(0.5, stop.set).start()
    try:
        with pytest.raises(StageStopped):
            run_in_pdf_process(time.sleep, 120, timeout=300, stop=stop)
        # The pool still works afterwards: the killed process was replaced.
        assert run_in_pdf_process(abs, -3, timeout=60, stop=threading.Event()) == 3
    finally:
        shutdown_pdf_pool()


def test_a_crash_traceback_shows_where_the_pdf_process_raised(test_env):
    from docqueue.runtime.pdf_pool import run_in_pdf_process
    from docqueue.runtime.pdf_processes import shutdown_pdf_pool
    from docqueue.worker.stage_outcomes import crash_traceback

    try:
        with pytest.raises(StageError) as raised:
            run_in_pdf_process(int, "not a number", timeout=60, stop=threading.Event())
    finally:
        shutdown_pdf_pool()
    # The user reads plain words; the job page gets the PDF process's own traceback.
    assert str(raised.value) == "the file could not be processed because of an internal error"
    text = crash_traceback(raised.value)
    assert "invalid literal for int()" in text and "Traceback" in text


def test_a_task_pebble_counts_running_on_no_live_process_is_given_up(test_env, monkeypatch, tmp_path):
    """pebble can hand a task to a process it is killing for another (pebble issue #153); the task's future then
    never ends. A running task whose process never said it started, or said so and is gone, is lost: a transient
    failure at once, not a wait for the stage's whole time limit."""
    from docqueue.runtime import pdf_pool, pdf_processes, pool_guard
    from docqueue.runtime.pdf_pool import StageProcessDied, run_in_pdf_process
    from docqueue.runtime.pdf_processes import shutdown_pdf_pool

    monkeypatch.setattr(pdf_pool, "LOST_AFTER_SECONDS", 0.5)
    gone = subprocess.Popen(["true"])
    gone.wait()
    try:
        # Scheduled without pool_guard, this task never says it started.
        silent = pdf_pool._GuardedTask(
            pdf_processes.process_pool().schedule(time.sleep, args=(120,)), str(tmp_path / "a"), 300
        )
        with pytest.raises(StageProcessDied, match="lost"):
            silent.result()
        # This one is said to run in a process that has exited.
        pool_guard.mark_started(str(tmp_path / "b"), gone.pid)
        ghost = pdf_pool._GuardedTask(
            pdf_processes.process_pool().schedule(time.sleep, args=(120,)), str(tmp_path / "b"), 300
        )
        with pytest.raises(StageProcessDied, match="lost"):
            ghost.result()
        # A task whose live process said it started runs past that time to its end.
        assert run_in_pdf_process(time.sleep, 1.5, timeout=60) is None
    finally:
        shutdown_pdf_pool()


def test_a_stop_signal_that_is_not_confirmed_lets_the_stage_finish(test_env):
    from docqueue.runtime.pdf_pool import run_in_pdf_process
    from docqueue.runtime.pdf_processes import shutdown_pdf_pool

    stop = threading.Event()
    threading.Timer(0.3, stop.set).start()
    asked = []
    try:
        # The lease still holds (the check says no): the stage runs on to its result.
        result = run_in_pdf_process(
            time.sleep, 1.5, timeout=60, stop=stop, confirm_stop=lambda: asked.append(1) or False
        )
    finally:
        shutdown_pdf_pool()
    assert result is None and asked == [1]


def test_threads_asking_at_once_get_one_worker_id():
    from docqueue.runtime import worker_identity

    worker_identity._worker_ids.clear()
    start = threading.Barrier(8)
    seen = []

    def ask():
        start.wait()
        seen.append(worker_identity.current_worker_id())

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(seen)) == 1
