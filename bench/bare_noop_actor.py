"""Baseline for bench/noop_jobs.py: a bare Dramatiq actor that does nothing but count.

Its own RedisBroker in its own namespace (BENCH_NAMESPACE), no Postgres, no
middleware of docqueue's: a message costs Dramatiq's own delivery, one
INCR, and the ack.
"""

import os

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker

REDIS_URL = os.environ["REDIS_URL"]
NAMESPACE = os.environ["BENCH_NAMESPACE"]
DONE_KEY = f"{NAMESPACE}:done"

dramatiq.set_broker(RedisBroker(url=REDIS_URL, namespace=NAMESPACE))
counter = redis.Redis.from_url(REDIS_URL)


@dramatiq.actor(max_retries=0)
def noop(n: int) -> None:
    """Count one more message done."""
    counter.incr(DONE_KEY)
