"""The durable side of bench/noop_jobs.py: a docqueue stage that does no work. Run with `dramatiq bench.noop_actor`.

The broker is docqueue's (`build_broker`, REDIS_NAMESPACE) with the same
middleware as `actors/` except the PDF pool's (there is no PDF work), so
LeaseHeartbeat renews the claims and records the worker, and IoLaneCap,
MemoryGuard, SigtermOnce, GracefulHandback and WorkerRecycle see every
message as they do in the real worker.

The actor is registered under the first pipeline stage's actor and queue
names (`inspect` on `documents`): the dispatcher sends a job's message to
the actor named after its `stage` and only knows the pipeline's stages
(`docqueue.dispatch.messages`), so jobs are enqueued at that stage and this
worker, in its own namespace, answers them instead of the real one. Each
message takes the path `docqueue.worker.stage_runner.run_stage` takes for a last
stage whose work returned at once: the claim of the message's jobs (`claim_many`,
which opens their attempt rows) in one transaction; then for each, fenced,
`hold_lease`, `mark_completed` (closing the attempt), the older runs' outputs
retired and the callback scheduled in another; then admission once in the same
thread, which keeps one message's worth of admitted jobs and goes on with them,
claimed with no message (`docqueue.worker.next_job`), as the runner does.
"""

from actors.middleware.graceful_handback import GracefulHandback
from actors.middleware.io_lane_cap import IoLaneCap
from actors.middleware.lease_heartbeat import LeaseHeartbeat
from actors.middleware.memory_guard import MemoryGuard
from actors.middleware.sigterm_once import SigtermOnce
from actors.middleware.worker_recycle import WorkerRecycle
from docqueue.broker import build_broker
from docqueue.observability import configure_logging

configure_logging()
broker = build_broker(
    [SigtermOnce(), MemoryGuard(), IoLaneCap(), LeaseHeartbeat(), GracefulHandback(), WorkerRecycle()]
)

# After the middleware, as in `actors/`: the actor's options must be declared by then.
import dramatiq  # noqa: E402

from docqueue.callbacks import deliveries  # noqa: E402
from docqueue.db import session_scope  # noqa: E402
from docqueue.dispatch.messages import message_job_ids  # noqa: E402
from docqueue.pipeline import first_stage  # noqa: E402
from docqueue.queue import DocumentQueueService, run_outputs  # noqa: E402
from docqueue.runtime import held_jobs  # noqa: E402
from docqueue.runtime.worker_identity import current_worker_id  # noqa: E402
from docqueue.worker import next_job  # noqa: E402

STAGE = first_stage()


@dramatiq.actor(
    actor_name=STAGE.actor_name,
    queue_name=STAGE.queue_name,
    max_retries=0,
    time_limit=60 * 60 * 1000,
    heartbeat_lease=True,
    io_lane=False,
)
def noop_stage(job_ids: int | list[int]) -> None:
    """Run the message's jobs, and the jobs admission then gives this thread, as `run_stage` does."""
    next_job.message_began()
    batch: list[int] | None = message_job_ids(job_ids)
    while batch:
        batch = _complete(batch)


def _complete(job_ids: list[int]) -> list[int] | None:
    """Claim the jobs in one statement and complete each under its lease (a stale message's: nothing); the next
    jobs to run here."""
    held_jobs.holding(job_ids)
    with session_scope() as session:
        claims = DocumentQueueService(session).claim_many(job_ids, STAGE.name, current_worker_id())
    for claim in claims:
        with session_scope() as session:
            queue = DocumentQueueService(session)
            queue.hold_lease(claim)
            queue.mark_completed(claim)
            run_outputs.retire_older_runs(session, claim.document_id, claim.job_id)
            deliveries.schedule(session, claim.job_id)
    kept = next_job.after_completion(STAGE) if claims else None
    return [job.job_id for job in kept] if kept else None
