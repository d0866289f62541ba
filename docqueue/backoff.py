"""Exponential backoff with "equal" jitter, in Python and as SQL.

Each wait is the doubled delay times a random factor in [0.5, 1]: it still
grows about 2x per attempt, but clients that failed together (an outage,
a restart) spread out instead of retrying in lockstep.
"""

from __future__ import annotations

import random


def jittered(first_delay: float, retries_before: int) -> float:
    """Seconds to wait before the next try, after `retries_before` earlier retries of this work."""
    return first_delay * 2**retries_before * (0.5 + random.random() / 2)


def jittered_interval_sql(first_delay: str, retries_before: str) -> str:
    """A Postgres interval expression for `jittered` over two SQL expressions; random() is drawn per row."""
    return f"make_interval(secs => {first_delay} * power(2, {retries_before}) * (0.5 + random() / 2))"
