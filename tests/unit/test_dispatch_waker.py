"""The web's dispatcher wake-ups: after the answer, one run at a time, every commit covered by a later run."""

from __future__ import annotations

import threading

from web.dispatch_waker import DispatchWaker


def test_wakes_during_a_run_are_covered_by_one_more_run():
    started, release = threading.Event(), threading.Event()
    runs = []

    def run():
        runs.append(len(runs) + 1)
        started.set()
        assert release.wait(10)

    waker = DispatchWaker(run)
    waker.wake()
    assert started.wait(10)
    for _ in range(5):  # commits made while the first run is under way: it may not have seen them
        waker.wake()
    assert not waker.wait_idle(timeout=0.2)
    release.set()
    assert waker.wait_idle(timeout=10)
    assert runs == [1, 2], "the five wakes share one run, which starts after the first ended"


def test_a_failed_run_does_not_stop_later_ones():
    outcomes = iter([RuntimeError("database down"), None])
    ran = []

    def run():
        ran.append(True)
        outcome = next(outcomes)
        if outcome is not None:
            raise outcome

    waker = DispatchWaker(run)
    waker.wake()
    assert waker.wait_idle(timeout=10)
    waker.wake()
    assert waker.wait_idle(timeout=10)
    assert len(ran) == 2
