"""Quiet alerts: a user's bad file is the user's news, and healthy runs log no warning.

A real worker process reports to a local stand-in for Sentry. A
password-protected PDF and a file that is not a PDF fail for good and their
owner's page says why, but Sentry hears nothing of them; a stage stopped at
its time limit (something an operator must act on) is an event, which also
proves the worker was reporting all along.
"""

from __future__ import annotations

import logging

import dramatiq
import pymupdf
import sqlalchemy as sa
from dramatiq import Worker
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import Middleware, SkipMessage

from docqueue.skipped_messages import quiet_skipped_messages
from tests.support.factories import add_document, make_pdf
from tests.support.hostile_files import make_busy_pdf
from tests.support.processes import wait_until
from tests.support.sentry_receiver import SentryReceiver


def status_of(session, document_id: int) -> str:
    session.commit()
    return session.execute(sa.text("SELECT status FROM documents WHERE id = :d"), {"d": document_id}).scalar()


def password_protected_pdf() -> bytes:
    source = pymupdf.open(stream=make_pdf(["salaries"]), filetype="pdf")
    return source.tobytes(encryption=pymupdf.PDF_ENCRYPT_AES_256, owner_pw="owner-pw", user_pw="user-pw")


def test_rejected_files_send_no_sentry_event_but_a_time_limit_does(procfile, session, make_user):
    owner, _ = make_user()
    with SentryReceiver() as sentry:
        env = {"SENTRY_DSN": sentry.dsn, "DISCOVERY_TIME_LIMIT_SECONDS": "1", "PDF_WORKER_PROCESSES": "1"}
        worker = procfile("worker", **env)
        procfile("clock", **env)  # admits the work
        locked = add_document(session, owner, password_protected_pdf(), filename="locked.pdf")
        not_pdf = add_document(session, owner, b"just some notes, not a PDF\n", filename="notes.pdf")
        for document_id in (locked, not_pdf):
            wait_until(lambda d=document_id: status_of(session, d) == "failed", timeout=90, message="the rejection")
        slow = add_document(session, owner, make_busy_pdf(8_000_000), filename="slow.pdf")
        wait_until(lambda: status_of(session, slow) == "failed", timeout=120, message="the time limit")
        wait_until(lambda: any("time limit" in text for text in sentry.texts()), timeout=30, message="its event")
        texts = sentry.texts()
    assert not [text for text in texts if "password" in text or "unsupported" in text], texts
    assert [text for text in texts if "time limit" in text], texts
    assert "was skipped" not in worker.log_path.read_text(errors="replace")


def test_a_skipped_message_logs_no_warning_in_a_real_dramatiq_worker(caplog):
    """A middleware's routine skip (the IO lane full) leaves no WARNING; other worker warnings still pass."""
    broker = StubBroker()

    class SkipFirst(Middleware):
        def before_process_message(self, broker, message):
            if message.args == ("skip",):
                raise SkipMessage("IO lane full")

    broker.add_middleware(SkipFirst())
    ran = []

    @dramatiq.actor(broker=broker)
    def note(value):
        ran.append(value)
        return value  # a non-None result without the Results middleware: dramatiq warns, and that must still show

    quiet_skipped_messages()
    worker = Worker(broker, worker_timeout=50)
    worker.start()
    try:
        with caplog.at_level(logging.DEBUG):
            note.send("skip")
            note.send("run")
            broker.join(note.queue_name)
            worker.join()
    finally:
        worker.stop()
    assert ran == ["run"]
    warnings = [record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING]
    assert not [text for text in warnings if "was skipped" in text], warnings
    assert [text for text in warnings if "returned a value" in text], warnings
