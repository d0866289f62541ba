"""What a pipeline stage is: one declared object.

A stage module declares `STAGE = Stage(...)` beside its `run` and `record`;
`docqueue/pipeline.py` lists the stages in order. Actors, messages, the PDF
pool's warm-up, progress and time limits all come from that one list.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    import pymupdf
    from sqlalchemy.orm import Session

    from docqueue.jobs import Claim


class Lane(StrEnum):
    """Where a stage's work runs."""

    #: In the worker's PDF/CPU process pool, with the original file on local disk; killed at its time limit.
    CPU = "cpu"
    #: In the worker thread, for calls to outside services; never holds a PDF process.
    IO = "io"


#: The Dramatiq queue of each lane: slow service calls never wait behind PDF work or the other way round.
LANE_QUEUES = {Lane.CPU: "documents", Lane.IO: "documents_io"}


@dataclass(frozen=True)
class Skipped:
    """What `run` returns when the stage had nothing to do: its record is `skipped` with this reason."""

    reason: str


@dataclass
class Reading:
    """A small document open in a PDF process for its one pass, and what each stage of the pass read so far."""

    detected_type: str
    document: pymupdf.Document
    #: Stage name -> what it read (`Read`, or `Skipped`), in pipeline order.
    read: dict[str, Any]


@dataclass(frozen=True)
class Read:
    """What a stage read in a small document's one pass: `result` for its `record`, `outputs` for its
    `OnePass.store`, and the units its stage record shows (unit, how many)."""

    result: Any
    outputs: Any = None
    units: tuple[str, int] | None = None
    #: The stages after it are not read in the pass: the next stage will likely have work of its own
    #: (OCR for pages without text), and what they would read would be dropped.
    ends_pass: bool = False


@dataclass(frozen=True)
class OnePass:
    """How a CPU stage runs within a small document's one pass (`docqueue/worker/one_pass.py`).

    `read(reading)` runs in the PDF process on the already open document and
    returns a `Read` (or `Skipped`) held in memory; `store(session, claim,
    outputs)`, when given, writes its outputs in the transaction that
    publishes the whole pass, before `record` runs.
    """

    read: Callable[[Reading], "Read | Skipped"]
    store: Callable[["Session", "Claim", Any], None] | None = None


@dataclass(frozen=True)
class Stage:
    """One step of the pipeline.

    `run(path, claim)` does the work and returns a small picklable result
    (`path` is the original file for the CPU lane, None for the IO lane);
    it may write batches itself under `hold_lease`. `record(session,
    claim, result)` stores the result in the transaction that hands the job
    on, under the same fenced lease. `run` may return `Skipped(reason)`
    instead; `skip_if(session, claim)`, when given, is asked first and a
    reason it returns skips the stage without running it.

    With `in_worker_thread`, a CPU-lane stage's `run` is called in the worker
    thread (with the original file fetched) rather than in a PDF process: for
    a stage that spreads its own work over the PDF pool
    (`pdf_pool.run_in_pdf_processes`, OCR) or does no PDF work at all
    (chunking the stored text). It cannot be killed, so it is stopped at
    its time limit between batches (`lease_watch.check_time`), as an I/O
    stage is; with `limits_own_time` it gets no stage-wide limit and limits
    its own work instead (OCR: OCR_SECONDS_PER_PAGE for each page it reads,
    and the owner's `ocr_timeout_seconds` for each page's recognition).

    An `optional` stage (any stage after the text is stored) cannot fail its
    document: once it fails for good (a permanent error, or its last
    attempt), its record is `failed` with the reason, the run goes on without
    it and completes, and the document lists the failure in its `warnings`.
    Its owner may retry that stage alone later (`queue.owner_retries`).
    """

    name: str
    description: str
    run: Callable[[str | None, "Claim"], Any]
    record: Callable[["Session", "Claim", Any], None]
    lane: Lane = Lane.CPU
    #: This stage's share of a document's progress, relative to the other stages' weights.
    weight: int = 1
    #: Seconds one attempt may run at the smallest size, fixed; None reads `time_limit_setting`.
    time_limit_seconds: int | None = None
    skip_if: Callable[["Session", "Claim"], str | None] | None = None
    in_worker_thread: bool = False
    #: The Settings field with this stage's base time limit (e.g. "discovery_time_limit_seconds");
    #: None (with no fixed limit) takes the owner's `ocr_timeout_seconds`. Scaled by `time_limits.time_limit_for`.
    time_limit_setting: str | None = None
    #: The stage limits its own work, piece by piece: the runner gives it no deadline (see above).
    limits_own_time: bool = False
    #: Its failure costs only its own output: the run goes on and completes (see above).
    optional: bool = False
    #: How it runs in a small document's one pass; None: it runs on its own (see `OnePass`).
    one_pass: OnePass | None = None

    @property
    def actor_name(self) -> str:
        return self.name

    @property
    def queue_name(self) -> str:
        return LANE_QUEUES[self.lane]
