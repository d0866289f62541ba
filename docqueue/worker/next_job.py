"""The jobs a worker thread goes on with after finishing a message's: admitted for it, claimed with no message.

With few jobs in flight (OCR_CONCURRENT_JOBS), every admitted job waited for
a consumer's next poll of Redis, up to DRAMATIQ_POLL_MS once a queue had been
empty: for a small document that wait was longer than its work. So the thread
whose jobs have just freed slots runs admission itself (`nudge_dispatcher`
with `keep`), keeps one message's worth of the admitted jobs (one job, or
several of one owner: `dispatch.messages`) and claims them as a message's
jobs would be claimed; the others are sent as usual. Admission's rules
(capacity, users' shares, lanes) decide which jobs those are, as for any other.

Rules:

- Only a job whose first stage runs in the lane of the stage that finished:
  the I/O lane's thread cap counts messages.
- For at most WORKER_CHAIN_SECONDS from the start of the thread's message:
  after that it hands back to Dramatiq, so the actor's backstop time limit and a
  deploy's drain see one message's worth of work.
- Not once the worker is shutting down.
- The thread tells the lease heartbeat which jobs it holds (`held_jobs`).
"""

from __future__ import annotations

import threading
import time

from docqueue.db import session_scope
from docqueue.dispatch.dispatcher import nudge_dispatcher
from docqueue.jobs import Dispatch
from docqueue.pipeline import stage_named
from docqueue.runtime.worker_shutdown import is_stopping
from docqueue.settings import get_settings
from docqueue.stages.stage import Stage

_message = threading.local()


def message_began() -> None:
    """Note that this thread has started a stage message."""
    _message.began = time.monotonic()


def after_completion(finished: Stage) -> list[Dispatch] | None:
    """Admit pending work now (a job has just left its slot); the admitted jobs this thread should claim, if any."""
    chain = get_settings().worker_chain_seconds
    keeps = not is_stopping() and time.monotonic() - getattr(_message, "began", 0.0) < chain
    with session_scope() as session:
        return nudge_dispatcher(
            session, keep=(lambda job: stage_named(job.stage).lane is finished.lane) if keeps else None
        )
