"""How a stage commits a batch of its work: units done, checkpoint, progress, under its lease.

A long stage writes its outputs batch by batch, each batch in one
transaction that holds the job's lease and reports the units it added; a
retried attempt starts after the last committed unit (`Claim.checkpoint`,
read by the statement that claimed it) instead of at the beginning.

How big a batch is: round trips, not bytes, bound throughput here (~0.2 ms
each), so a batch is as big as memory allows rather than a fixed few pages.
It ends when it holds its stage's budget of bytes (a quarter of it while
memory is tight: `memory.batch_size`), or BATCH_SECONDS after it began, so
progress stays live and a crash or a lost lease costs a few seconds of
work; a small document is one batch. `BatchBudget` keeps that rule.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.orm import Session

from docqueue.db import session_scope
from docqueue.jobs import Claim
from docqueue.queue import stage_records
from docqueue.runtime import lease_watch
from docqueue.runtime.memory import batch_size

#: Longest a batch gathers before it commits: what a crash loses, and how stale live progress can be.
BATCH_SECONDS = 5.0


class BatchBudget:
    """Whether a stage's batch is due: it holds `limit` bytes (a quarter while memory is tight) or is
    BATCH_SECONDS old."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0
        self.started: float | None = None

    def add(self, amount: int) -> None:
        """Count `amount` more bytes (0: a unit read with nothing to hold) into the batch."""
        if self.started is None:
            self.started = time.monotonic()
        self.held += amount

    def due(self) -> bool:
        if self.started is None:
            return False
        if time.monotonic() - self.started >= BATCH_SECONDS:
            return True
        # Memory is looked at only once the batch holds enough to be due while it is tight (a quarter).
        return self.held >= max(1, self.limit // 4) and self.held >= batch_size(self.limit)

    def clear(self) -> None:
        self.held, self.started = 0, None


@contextmanager
def committing_batch(claim: Claim, *, added: int, total: int, unit: str, checkpoint: int) -> Iterator[Session]:
    """A transaction for one batch of the claimed stage's outputs; raises LeaseLost if the claim is gone.

    The stage record counts `added` more of `total` `unit`s and its
    checkpoint moves to `checkpoint` as the transaction opens, in the one
    statement that checks and locks the lease; write the batch's rows with
    the session yielded, and all of it commits together on leaving. A stage
    in this process past its time limit gets StageTimeout instead, before
    the batch is written and again before it commits (`lease_watch`).
    """
    before, weight = claim.progress
    lease_watch.check_time(claim.job_id)
    with session_scope() as session:
        stage_records.report_units(
            session,
            claim,
            added=added,
            total=total,
            unit=unit,
            checkpoint=checkpoint,
            progress_before=before,
            progress_weight=weight,
        )
        yield session
        # A write that blocked past the limit is rolled back too: a stopped stage publishes nothing more.
        lease_watch.check_time(claim.job_id)
