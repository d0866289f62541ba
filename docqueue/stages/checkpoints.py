"""How a stage commits a batch of its work: units done, checkpoint, progress, under its lease.

A long stage writes its outputs batch by batch, each batch in one
transaction that holds the job's lease and reports the units it added; a
retried attempt reads `resume_after` and starts after the last committed
unit instead of at the beginning.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.orm import Session

from docqueue.db import session_scope
from docqueue.queue import Claim, stage_records


@contextmanager
def committing_batch(claim: Claim, *, added: int, total: int, unit: str, checkpoint: int) -> Iterator[Session]:
    """A transaction for one batch of the claimed stage's outputs; raises LeaseLost if the claim is gone.

    The stage record counts `added` more of `total` `unit`s and its
    checkpoint moves to `checkpoint` as the transaction opens, in the one
    statement that checks and locks the lease; write the batch's rows with
    the session yielded, and all of it commits together on leaving.
    """
    from docqueue.pipeline import progress_span  # the pipeline imports the stages

    before, weight = progress_span(claim.stage)
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


def resume_after(claim: Claim) -> int:
    """The last unit the claimed stage committed in an earlier attempt of this run (0: start at the beginning)."""
    with session_scope() as session:
        return stage_records.checkpoint(session, claim)
