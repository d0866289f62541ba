"""A small document's one pass: one claim, one PDF-process call, one publishing transaction.

Stage by stage, a document pays for each stage a PDF-process round trip, a
file open, a batch transaction and a hand-on statement. For the small
born-digital PDFs most archives are made of, that overhead was most of the
cost (`pdflatex-image.pdf`: 34 statements in 12 transactions and 3
PDF-process calls; 23 in 5 and 1 in the pass, `tests/integration/test_one_pass.py`). So a job's first claim of a document no larger than
SMALL_DOCUMENT_MAX_BYTES runs every stage that declares a `OnePass` in one
PDF-process call on the one open file, and publishes all of them in the
transaction that hands the job on. Large documents keep the per-stage
checkpoints and hand-ons, which pay for themselves there.

Rules:

- Only the first attempt of a run's first stage takes the pass. A retry
  runs the stages one by one, so a failure is met, recorded and retried at
  its own stage.
- In the PDF process, the stages with a `OnePass` are read in pipeline
  order; the reading ends at the first that raises (that stage then runs on
  its own, with its own attempts and failure) and after the first stage when
  the document has more than SMALL_DOCUMENT_MAX_PAGES pages, or after a
  stage whose `Read` ends the pass (extract_text, when a page has no text:
  OCR will likely run, and images and chunks come after it). The claimed
  stage's own error is the claim's, as it would be without the pass.
- The pass may run SMALL_DOCUMENT_PASS_SECONDS (or the claimed stage's
  limit, if shorter). If it runs past that, or its process dies or passes
  its memory cap, the worker runs the claimed stage on its own, in the same
  claim, and every later stage on its own after it: a hostile file meets
  each stage's own limit and fails at its own stage.
- The publish walks the pipeline under the claim's fence, as a worker going
  on stage by stage would: a stage read in the pass stores its outputs
  (COPY) and records its result; any other stage is skipped if its
  `skip_if` gives a reason, else the pass ends there and the job is handed on
  to it (OCR for a scan, the AI stages when configured). What was read for
  later stages is then dropped: they run on their own after it.
- The stages the pass ran share its claim and its attempt: their records
  say completed, with the pass's start, in one statement.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from docqueue.jobs import Claim
from docqueue.pipeline import PIPELINE, first_stage, progress_after, stage_named
from docqueue.queue import stage_records
from docqueue.settings import get_settings
from docqueue.stages.stage import Read, Reading, Skipped, Stage
from docqueue.statuses import STAGE_RETRY


def takes_one_pass(stage: Stage, claim: Claim) -> bool:
    """Whether this claim runs as a small document's one pass (see the module's rules)."""
    return (
        stage is first_stage()
        and stage.one_pass is not None
        and claim.operation != STAGE_RETRY
        and claim.attempt == 1
        and claim.checkpoint == 0
        and 0 < claim.size_bytes <= get_settings().small_document_max_bytes
    )


def _stages_from(name: str) -> tuple[Stage, ...]:
    return PIPELINE[PIPELINE.index(stage_named(name)) :]


def read_one_pass(path: str, claim: Claim, max_pages: int) -> dict[str, Read | Skipped]:
    """Read every stage of the pass from the file at `path`, after the first only for a document of at most
    `max_pages` pages: stage name -> what it read. Runs in a PDF process (its settings are the worker's, passed
    in: a pool process keeps those it started with)."""
    from docqueue.stages.inspect import open_document, sniff_type

    detected_type = sniff_type(path)
    with open_document(path, detected_type) as document:
        reading = Reading(detected_type, document, {})
        for stage in _stages_from(claim.stage):
            if stage.one_pass is None:
                continue
            if reading.read and document.page_count > max_pages:
                break
            try:
                read = reading.read[stage.name] = stage.one_pass.read(reading)
            except Exception:
                if not reading.read:
                    raise  # the claimed stage's own error
                break  # that stage runs on its own, and meets its error there
            if getattr(read, "ends_pass", False):
                break
        return reading.read


def record_one_pass(session: Session, claim: Claim, reads: dict[str, Read | Skipped]) -> tuple[Stage | None, int, str]:
    """Store and record what the pass read, under the claim's held lease; (the stage the job goes on to, or
    None when the run is done, the progress reached, and the last stage the pass ran)."""
    completed: list[tuple[str, tuple[str, int] | None]] = []
    skipped: list[tuple[str, str]] = []
    reached = ran_last = claim.stage
    for stage in _stages_from(claim.stage):
        claimed = stage.name == claim.stage
        reason = stage.skip_if(session, claim) if stage.skip_if is not None and not claimed else None
        read = reads.get(stage.name)
        if reason or isinstance(read, Skipped):
            skipped.append((stage.name, reason or read.reason))
        elif read is None:
            stage_records.ended_in_passing(session, claim, completed, skipped)
            return stage, progress_after(reached), ran_last
        else:
            if stage.one_pass.store is not None:
                stage.one_pass.store(session, claim, read.outputs)
            stage.record(session, claim, read.result)
            if not claimed:
                completed.append((stage.name, read.units))
            ran_last = stage.name
        reached = stage.name
    stage_records.ended_in_passing(session, claim, completed, skipped)
    return None, 100, ran_last
