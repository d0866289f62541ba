"""Sharing a worker's PDF processes between users: nobody holds them all while someone else waits.

A task takes a seat before it is handed to the pool (`pdf_pool`), and a
seat is a process. Rules:

- While a process is free, the waiting task whose owner holds the fewest
  processes gets it (then the one waiting longest): a user with work on
  every process never takes a freed process from someone who has none.
- A user's share is the pool's processes divided by the users with tasks
  here (running or waiting), at least one. While a user with fewer than
  their share waits, the longest-running task of a user over their share
  is preempted: its process is killed and its work handed back (a stage
  goes back to `queued`, its attempt not counted; an OCR range to
  `pending`), to resume from its last committed batch once it gets a
  process again. A lone user still uses every process.

So a user's hostile or huge file holds at most their share of the pool
while another user's small document waits: that one waits only for a
process to be killed and replaced (about a second or two), not for a stage
time limit.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from docqueue.runtime.worker_shutdown import WorkerStopping

#: How often a waiting task looks again at whether it must stop, or may preempt someone.
WAIT_POLL_SECONDS = 0.2


class Preempted(WorkerStopping):
    """The task's process was taken for another user's waiting work: its item is handed back, not failed."""


@dataclass(eq=False)
class Seat:
    """One task's place in the pool: waiting for a process, then holding one."""

    #: The user whose work it is (None: no user, e.g. a test's task or the pool's warm-up).
    owner: int | None
    arrived: float = field(default_factory=time.monotonic)
    #: When it got its process; None while it waits.
    started: float | None = None
    #: Set when another user's waiting work takes its process: the task must give way.
    preempted: threading.Event = field(default_factory=threading.Event)


class PoolShare:
    """The seats of one pool of `size()` processes."""

    def __init__(self, size: Callable[[], int]) -> None:
        self._size = size
        self._seats: list[Seat] = []
        self._changed = threading.Condition()

    def free_processes(self) -> int:
        """Processes no task holds now."""
        with self._changed:
            return self._size() - sum(seat.started is not None for seat in self._seats)

    def take(self, seat: Seat, check: Callable[[], None] = lambda: None) -> None:
        """Wait until `seat` gets a process, preempting a user over their share for it; `check()` may raise to
        stop waiting (the seat is then left)."""
        with self._changed:
            self._seats.append(seat)
        try:
            while True:
                with self._changed:
                    if self._my_turn(seat):
                        seat.started = time.monotonic()
                        return
                    victim = self._over_share_victim(seat)
                    if victim is not None:
                        victim.preempted.set()
                    self._changed.wait(WAIT_POLL_SECONDS)
                check()
        except BaseException:
            self.leave(seat)
            raise

    def leave(self, seat: Seat) -> None:
        """The seat's task has ended (or stopped waiting): its process goes to the next in turn."""
        with self._changed:
            if seat in self._seats:
                self._seats.remove(seat)
            self._changed.notify_all()

    def _held(self) -> Counter:
        # A preempted task's process is being killed: it no longer counts towards its owner's share.
        return Counter(seat.owner for seat in self._seats if seat.started is not None and not seat.preempted.is_set())

    def _my_turn(self, seat: Seat) -> bool:
        holding = sum(other.started is not None for other in self._seats)
        if holding >= self._size():
            return False
        held = self._held()
        waiting = [other for other in self._seats if other.started is None]
        return min(waiting, key=lambda other: (held[other.owner], other.arrived)) is seat

    def _over_share_victim(self, seat: Seat) -> Seat | None:
        """The task to preempt for `seat`: the longest-running one of a user over their share, if `seat`'s owner
        is under theirs."""
        held = self._held()
        share = max(1, self._size() // len({other.owner for other in self._seats}))
        if held[seat.owner] >= share:
            return None
        over = [
            other
            for other in self._seats
            if other.started is not None and not other.preempted.is_set() and held[other.owner] > share
        ]
        return min(over, key=lambda other: other.started) if over else None
