"""Helpers for the callback tests: settings for one test, and an ended run with a delivery due."""

from __future__ import annotations

import sqlalchemy as sa

from docqueue.callbacks.deliveries import schedule
from docqueue.settings import get_settings
from tests.support.factories import add_document


def settings_for_test(monkeypatch):
    """A fixture's body: yields `apply(NAME="value", ...)`, which sets settings for this test only."""

    def apply(**values: str) -> None:
        for name, value in values.items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()

    yield apply
    monkeypatch.undo()
    get_settings.cache_clear()


def ended_run_with_callback(session, owner_id: int, url: str) -> int:
    """A document of `owner_id` whose run completed, with its delivery to `url` due now; the delivery's id.

    The URL is stored as given, as if it had been accepted when the document was uploaded.
    """
    document_id = add_document(session, owner_id)
    session.execute(sa.text("UPDATE documents SET callback_url = :url WHERE id = :d"), {"url": url, "d": document_id})
    # Along the edges the queue's transition guard allows: admitted, claimed, completed.
    for status in ("queued", "processing", "completed"):
        job_id = session.execute(
            sa.text(
                "UPDATE document_queue SET status = :s, started_at = now(), completed_at = now() "
                "WHERE document_id = :d RETURNING id"
            ),
            {"s": status, "d": document_id},
        ).scalar_one()
    delivery_id = schedule(session, job_id)
    session.commit()
    return delivery_id


def delivery(session, delivery_id: int) -> sa.Row:
    """The delivery's row as it is now."""
    session.commit()  # a fresh snapshot: the sender changed it in its own transactions
    return session.execute(sa.text("SELECT * FROM callback_deliveries WHERE id = :i"), {"i": delivery_id}).one()
