"""Sharing the PDF pool between users: a lone user uses every process; nobody holds them all while another waits."""

from __future__ import annotations

import threading
import time

import pytest

from docqueue.runtime.pool_share import PoolShare, Preempted, Seat


def seated(share: PoolShare, owner: int) -> Seat:
    seat = Seat(owner)
    share.take(seat)
    return seat


def test_a_lone_user_holds_every_process_and_gives_one_up_only_when_another_user_waits():
    share = PoolShare(lambda: 2)
    first, second = seated(share, owner=1), seated(share, owner=1)
    assert share.free_processes() == 0 and not first.preempted.is_set() and not second.preempted.is_set()

    other = Seat(owner=2)
    waiting = threading.Thread(target=share.take, args=(other,))
    waiting.start()
    # The user over their share (one process of two, with two users) gives up the task that has run longest.
    assert first.preempted.wait(5) and not second.preempted.is_set()
    assert other.started is None, "a process was given away before the preempted task left it"
    share.leave(first)
    waiting.join(5)
    assert other.started is not None and share.free_processes() == 0
    assert not second.preempted.is_set(), "a user within their share was preempted"


def test_a_freed_process_goes_to_the_user_holding_fewest_not_to_the_first_in_line():
    share = PoolShare(lambda: 2)
    held = [seated(share, owner=1), seated(share, owner=1)]
    # The busy user asks for a third process first; another user asks after.
    again, other = Seat(owner=1), Seat(owner=2)
    threads = [threading.Thread(target=share.take, args=(seat,)) for seat in (again, other)]
    threads[0].start()
    time.sleep(0.3)
    threads[1].start()
    assert held[0].preempted.wait(5)
    share.leave(held[0])
    threads[1].join(5)
    assert other.started is not None and again.started is None
    share.leave(held[1])
    threads[0].join(5)
    assert again.started is not None


def test_a_task_waiting_for_a_process_stops_when_its_check_says_so():
    share = PoolShare(lambda: 1)
    seated(share, owner=1)
    stop = threading.Event()
    threading.Timer(0.3, stop.set).start()

    def check():
        if stop.is_set():
            raise RuntimeError("stopped")

    with pytest.raises(RuntimeError, match="stopped"):
        share.take(Seat(owner=1), check)
    assert len(share._seats) == 1, "a seat that stopped waiting stayed in line"


def test_another_users_task_gets_a_real_pdf_process_while_one_user_holds_both(test_env):
    """Two endless tasks of one user fill the pool; another user's task runs at once and only the longest-running
    of the first user's tasks is killed (Preempted: its stage is handed back, not failed)."""
    from docqueue.runtime.pdf_pool import run_in_pdf_process
    from docqueue.runtime.pdf_processes import shutdown_pdf_pool

    outcomes: dict[str, object] = {}
    stop = threading.Event()

    def hog(name: str) -> None:
        try:
            outcomes[name] = run_in_pdf_process(time.sleep, 600, timeout=900, owner=1, stop=stop)
        except BaseException as error:  # noqa: BLE001  (recorded for the assertions)
            outcomes[name] = error

    try:
        first = threading.Thread(target=hog, args=("first",))
        first.start()
        time.sleep(1)
        second = threading.Thread(target=hog, args=("second",))
        second.start()
        time.sleep(1)
        assert run_in_pdf_process(abs, -3, timeout=120, owner=2) == 3
        first.join(30)
        assert isinstance(outcomes.get("first"), Preempted), outcomes
        assert "second" not in outcomes, "the user's other task was stopped too"
    finally:
        stop.set()
        first.join(30)
        second.join(30)
        shutdown_pdf_pool()
