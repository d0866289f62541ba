"""Several of one owner's jobs in one stage message (`dispatch.messages`, `worker/stage_runner.py`): claimed in one
statement, each run, fenced, failed and handed back on its own."""

from __future__ import annotations

import dramatiq
import sqlalchemy as sa

from docqueue.dispatch.dispatcher import process_document_queue
from docqueue.dispatch.messages import held_messages, message_job_ids
from docqueue.pipeline import first_stage
from docqueue.queue import DocumentQueueService
from docqueue.queue.operator import OperatorActions
from docqueue.runtime import held_jobs
from docqueue.worker import stage_runner
from docqueue.worker.stage_runner import run_stage
from tests.support.factories import add_bulk_documents, add_document, make_pdf
from tests.support.statements import counting_statements


def sent_messages() -> list[list[int]]:
    """The job ids of each message Redis holds for the first stage."""
    broker = dramatiq.get_broker()
    stage = first_stage()
    messages = [
        dramatiq.Message.decode(data) for data in broker.client.hvals(f"{broker.namespace}:{stage.queue_name}.msgs")
    ]
    return [message_job_ids(message.args[0]) for message in messages]


def owners_of(session, job_ids: list[int]) -> set[int]:
    rows = session.execute(sa.text("SELECT DISTINCT owner_id FROM document_queue WHERE id = ANY(:j)"), {"j": job_ids})
    return set(rows.scalars())


def statuses(session, job_ids: list[int]) -> list[str]:
    rows = session.execute(sa.text("SELECT id, status FROM document_queue WHERE id = ANY(:j)"), {"j": job_ids}).all()
    return [status for _, status in sorted(rows, key=lambda row: job_ids.index(row.id))]


def queued_jobs(session, owner_id: int, files: list[bytes]) -> list[int]:
    """Admitted jobs of `owner_id`'s uploads of `files`, in order, their messages unsent."""
    documents = [add_document(session, owner_id, data) for data in files]
    DocumentQueueService(session).admit_pending()
    session.commit()
    rows = session.execute(
        sa.text("SELECT id FROM document_queue WHERE document_id = ANY(:d) ORDER BY id"), {"d": documents}
    )
    return list(rows.scalars())


def small_pdfs(count: int) -> list[bytes]:
    return [make_pdf([f"file {n}"]) for n in range(count)]


def test_admission_puts_one_owners_jobs_in_a_message_only_while_capacity_exceeds_the_threads(
    session, make_user, broker, ai_settings
):
    owners = [make_user()[0] for _ in range(2)]
    for owner_id in owners:
        add_bulk_documents(session, owner_id, 6)
    # No worker is alive, so one process's WORKER_THREADS (2) share 16 slots: 8 each, at most JOBS_PER_MESSAGE (4).
    ai_settings(OCR_CONCURRENT_JOBS=16, WORKER_THREADS=2, JOBS_PER_MESSAGE=4, BULK_RESERVED_SLOTS=0)
    report = process_document_queue(session)
    assert report.admitted == 12
    messages = sent_messages()
    assert sorted(job for message in messages for job in message) == sorted(
        session.execute(sa.text("SELECT id FROM document_queue")).scalars()
    ), "every admitted job is in exactly one message"
    assert sorted(len(message) for message in messages) == [2, 2, 4, 4]
    assert all(len(owners_of(session, message)) == 1 for message in messages), "a message holds one owner's jobs"
    assert {(job, "inspect") for message in messages for job in message} <= held_messages()


def test_with_no_more_capacity_than_threads_each_job_has_its_own_message(session, make_user, broker, ai_settings):
    add_bulk_documents(session, make_user()[0], 6)
    ai_settings(OCR_CONCURRENT_JOBS=4, WORKER_THREADS=4, JOBS_PER_MESSAGE=8, BULK_RESERVED_SLOTS=0)
    assert process_document_queue(session).admitted == 4
    assert sorted(len(message) for message in sent_messages()) == [1, 1, 1, 1]


def test_a_messages_jobs_are_claimed_in_one_statement_and_each_completes(session, owner, monkeypatch, ai_settings):
    ai_settings(OCR_CONCURRENT_JOBS=8, SMALL_DOCUMENT_MAX_BYTES=0)
    singles = queued_jobs(session, owner, small_pdfs(3))
    with counting_statements(monkeypatch) as one_by_one:
        for job_id in singles:
            assert run_stage("inspect", job_id) == "done"
    batch = queued_jobs(session, owner, small_pdfs(3))
    held = []
    real_run_job = stage_runner._run_job
    monkeypatch.setattr(
        stage_runner, "_run_job", lambda step: held.append(sorted(held_jobs.held())) or real_run_job(step)
    )
    with counting_statements(monkeypatch) as together:
        assert run_stage("inspect", batch) == "done"
    assert statuses(session, singles + batch) == ["completed"] * 6
    assert held == [sorted(batch), sorted(batch[1:]), sorted(batch[2:])], "the heartbeat renews every claim held"
    opened = session.execute(
        sa.text("SELECT count(DISTINCT started_at) FROM stage_attempts WHERE job_id = ANY(:j) AND stage = 'inspect'"),
        {"j": batch},
    ).scalar()
    assert opened == 1, "the three claims opened their attempts in one statement"
    # Two claims fewer, and one admission run (about six statements) after the message's jobs, not one after each.
    assert together.statements["queue"] <= one_by_one.statements["queue"] - 2 - 2 * 5, (together, one_by_one)


def test_one_broken_file_in_a_message_fails_alone(session, owner, ai_settings):
    ai_settings(OCR_CONCURRENT_JOBS=8)
    broken = b"%PDF-1.4 this is not really a PDF at all"
    jobs = queued_jobs(session, owner, [make_pdf(["fine"]), broken, make_pdf(["fine too"])])
    run_stage("inspect", jobs)
    assert statuses(session, jobs) == ["completed", "failed", "completed"]
    error = session.execute(
        sa.text("SELECT d.error FROM documents d JOIN document_queue q ON q.document_id = d.id WHERE q.id = :j"),
        {"j": jobs[1]},
    ).scalar()
    assert error and "PDF" in error


def test_a_stale_job_in_a_message_is_dropped_and_the_others_run(session, owner, ai_settings):
    ai_settings(OCR_CONCURRENT_JOBS=8)
    done, fresh = queued_jobs(session, owner, small_pdfs(2))

    def attempts() -> dict[int, int]:
        rows = session.execute(sa.text("SELECT job_id, count(*) FROM stage_attempts GROUP BY job_id")).all()
        return dict(rows)

    assert run_stage("inspect", done) == "done"
    before = attempts()
    assert run_stage("inspect", [done, fresh]) == "done"
    assert statuses(session, [done, fresh]) == ["completed", "completed"]
    assert attempts() == {done: before[done], fresh: before[done]}, "the stale one claimed and ran nothing"


def test_a_job_cancelled_while_it_waits_its_turn_publishes_nothing(session, owner, monkeypatch, ai_settings):
    ai_settings(OCR_CONCURRENT_JOBS=8)
    first, second = queued_jobs(session, owner, small_pdfs(2))
    real_run_job = stage_runner._run_job

    def cancel_the_second_first(step):
        if step.claim.job_id == first:
            OperatorActions(session, None).cancel([second])
            session.commit()
        return real_run_job(step)

    monkeypatch.setattr(stage_runner, "_run_job", cancel_the_second_first)
    run_stage("inspect", [first, second])
    assert statuses(session, [first, second]) == ["completed", "cancelled"]
    pages = session.execute(sa.text("SELECT count(*) FROM document_pages WHERE job_id = :j"), {"j": second}).scalar()
    assert pages == 0


def test_a_worker_stopping_mid_message_hands_the_waiting_jobs_back_unburnt(session, owner, monkeypatch, ai_settings):
    ai_settings(OCR_CONCURRENT_JOBS=8)
    jobs = queued_jobs(session, owner, small_pdfs(3))
    turns = []
    monkeypatch.setattr(stage_runner, "is_stopping", lambda: len(turns) > 0)
    real_run_job = stage_runner._run_job
    monkeypatch.setattr(stage_runner, "_run_job", lambda step: turns.append(step) or real_run_job(step))
    assert run_stage("inspect", jobs) == "handed_back"
    assert statuses(session, jobs)[1:] == ["queued", "queued"]
    attempts = session.execute(
        sa.text("SELECT attempts FROM document_queue WHERE id = ANY(:j) ORDER BY id"), {"j": jobs[1:]}
    ).scalars()
    assert list(attempts) == [0, 0], "a deploy is not the documents' fault"
