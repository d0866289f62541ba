"""What a document's owner reads through the API names no library: a failed attempt's kind and an unreachable
callback are in the product's words; the class, text and traceback go to the log and Sentry only."""

from __future__ import annotations

import io

import pytest
import sqlalchemy as sa

from docqueue.callbacks.sender import deliver_due
from tests.support.factories import add_document, make_pdf
from tests.support.processes import free_port
from tests.support.stages import assert_plain, process, run_until_settled

# Recording extract_text's summary (the only change of a document to ocr_status 'not_needed') fails as a
# deadlock would: Postgres's 40P01, which reaches the worker as SQLAlchemy's OperationalError (transient).
_DEADLOCK_ON_TEXT_SUMMARY = [
    """
    CREATE FUNCTION test_deadlock() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN RAISE EXCEPTION 'deadlock detected' USING ERRCODE = '40P01'; END $$
    """,
    """
    CREATE TRIGGER test_deadlock BEFORE UPDATE ON documents FOR EACH ROW
    WHEN (NEW.ocr_status = 'not_needed' AND OLD.ocr_status IS DISTINCT FROM 'not_needed')
    EXECUTE FUNCTION test_deadlock()
    """,
]


@pytest.fixture
def deadlock_on_text_summary(test_env):
    from docqueue.db import get_engine

    with get_engine().begin() as connection:
        for statement in _DEADLOCK_ON_TEXT_SUMMARY:
            connection.execute(sa.text(statement))
    yield
    with get_engine().begin() as connection:
        connection.execute(sa.text("DROP TRIGGER test_deadlock ON documents"))
        connection.execute(sa.text("DROP FUNCTION test_deadlock()"))


def auth(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def test_a_library_error_shows_in_the_attempt_history_in_plain_words(
    deadlock_on_text_summary, client, make_user, session
):
    user_id, token = make_user()
    document_id = add_document(session, user_id)
    assert process(session, document_id).status == "failed"
    attempts = client.get(f"/api/documents/{document_id}", headers=auth(token)).json["attempts"]
    ended = [(a["stage"], a["outcome"], a["error_class"]) for a in attempts if a["stage"] == "extract_text"]
    # Before: error_class "OperationalError", the library's class name.
    assert ended == [
        ("extract_text", "retrying", "temporary problem"),
        ("extract_text", "retrying", "temporary problem"),
        ("extract_text", "failed", "temporary problem"),
    ]
    for attempt in attempts:
        for shown in (attempt["error_class"], attempt["error_message"]):
            if shown is not None:
                assert_plain(shown)


def test_an_unreachable_callback_url_is_reported_in_plain_words(client, make_user, session):
    _, token = make_user()
    nobody_listens = f"http://127.0.0.1:{free_port()}/hook"
    response = client.post(
        "/api/documents",
        data={"file": (io.BytesIO(make_pdf(["hello"])), "doc.pdf"), "callback_url": nobody_listens},
        headers=auth(token),
        content_type="multipart/form-data",
    )
    document_id = response.json["id"]
    assert run_until_settled(session, document_id).status == "completed"
    assert deliver_due() == 1
    (shown,) = client.get(f"/api/documents/{document_id}/callbacks", headers=auth(token)).json["callbacks"]
    # Before: "could not reach the callback URL (ConnectionError)"; the kind of failure stays in the log.
    assert shown["last_error"] == "not delivered: no HTTP answer from the callback URL"
    assert_plain(shown["last_error"])
