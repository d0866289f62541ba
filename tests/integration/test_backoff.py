"""Backoff with jitter, as Python computes it (AI calls) and as Postgres does (queue retries, callbacks)."""

from __future__ import annotations

import sqlalchemy as sa

from docqueue.backoff import jittered, jittered_interval_sql


def test_python_waits_double_per_retry_within_their_jitter_and_vary():
    for retries_before in range(4):
        full = 0.5 * 2**retries_before
        waits = [jittered(0.5, retries_before) for _ in range(50)]
        assert all(full / 2 <= wait <= full for wait in waits), (retries_before, waits)
        assert len(set(waits)) > 1


def test_postgres_draws_a_wait_per_row_within_its_jitter(session):
    waits = (
        session.execute(
            sa.text(
                f"SELECT extract(epoch FROM {jittered_interval_sql(':first', 'n')}) FROM generate_series(0, 3) n, "
                "generate_series(1, 20) copy ORDER BY n"
            ),
            {"first": 30},
        )
        .scalars()
        .all()
    )
    for retries_before in range(4):
        full = 30 * 2**retries_before
        drawn = [float(wait) for wait in waits[20 * retries_before : 20 * (retries_before + 1)]]
        assert all(full / 2 <= wait <= full for wait in drawn), (retries_before, drawn)
        assert len(set(drawn)) > 1, "each row draws its own"
