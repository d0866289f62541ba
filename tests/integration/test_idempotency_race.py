"""Two uploads with the same Idempotency-Key from the same user at the same moment store one document."""

from __future__ import annotations

import io
import threading

import sqlalchemy as sa

from tests.support.factories import make_pdf
from tests.support.processes import wait_until


def waiting_on_idempotency_keys(engine) -> int:
    """How many sessions wait for a lock on the idempotency_keys table."""
    with engine.connect() as connection:
        return connection.execute(
            sa.text("SELECT count(*) FROM pg_locks WHERE relation = 'idempotency_keys'::regclass AND NOT granted")
        ).scalar()


def test_concurrent_uploads_with_one_idempotency_key_store_one_document(app, make_user, session):
    from docqueue.db import get_engine

    _, token = make_user()
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": "race-1"}
    pdf = make_pdf(["sent twice at once"])
    answers = []

    def upload():
        response = app.test_client().post(
            "/api/documents",
            data={"file": (io.BytesIO(pdf), "race.pdf")},
            headers=headers,
            content_type="multipart/form-data",
        )
        answers.append((response.status_code, response.json, response.headers.get("Idempotent-Replayed")))

    engine = get_engine()
    gate = engine.connect()
    # Both requests reach the key's INSERT before either may run it: they then race for the key itself.
    gate.execute(sa.text("LOCK TABLE idempotency_keys IN SHARE ROW EXCLUSIVE MODE"))
    uploads = [threading.Thread(target=upload) for _ in range(2)]
    try:
        for thread in uploads:
            thread.start()
        wait_until(lambda: waiting_on_idempotency_keys(engine) == 2, 8, message="both requests at the key")
    finally:
        gate.rollback()
        gate.close()
        for thread in uploads:
            thread.join(timeout=60)

    assert session.execute(sa.text("SELECT count(*) FROM documents")).scalar() == 1
    # The one that stored first: 202 and not a replay.
    (first, replayed) = sorted(answers, key=lambda answer: (answer[0] != 202, answer[2] or ""))
    assert first[0] == 202 and first[2] is None
    # The second gets the first's answer, or 409 while the first is still being stored: never a second document.
    assert replayed[:2] == first[:2] and replayed[2] == "true" or replayed[0] == 409, answers
