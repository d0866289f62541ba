"""Building the Dramatiq broker, the same way in every process.

Order matters: Sentry first (its Dramatiq integration patches the broker
class), then the broker, then middleware; actors are imported only after
that, because middleware that declares actor options must already be there.
Every process that builds it (worker, clock, web) checks at once whether
the Redis evicts keys (`redis_eviction.py`).
"""

from __future__ import annotations

from typing import Iterable

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import Middleware

from docqueue.observability import init_sentry
from docqueue.redis_eviction import warn_if_evicting
from docqueue.settings import get_settings


def build_broker(middleware: Iterable[Middleware] = ()) -> RedisBroker:
    """Create the Redis broker with `middleware` added and make it the global broker."""
    init_sentry()
    settings = get_settings()
    broker = RedisBroker(url=settings.require_redis_url(), namespace=settings.redis_namespace)
    for extra in middleware:
        broker.add_middleware(extra)
    dramatiq.set_broker(broker)
    warn_if_evicting(broker.client, settings.lost_message_after_seconds)
    return broker
