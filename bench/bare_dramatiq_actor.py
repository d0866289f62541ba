"""Baseline for bench/pipeline_throughput.py: the same PDF work as a bare Dramatiq actor.

No Postgres, no claims, no leases: a message names a file, the actor opens
it, counts its pages, extracts every page's text and bumps a Redis counter.
"""

import os

import dramatiq
import pymupdf
import redis
from dramatiq.brokers.redis import RedisBroker

REDIS_URL = os.environ["REDIS_URL"]
NAMESPACE = os.environ["BENCH_NAMESPACE"]

dramatiq.set_broker(RedisBroker(url=REDIS_URL, namespace=NAMESPACE))
counter = redis.Redis.from_url(REDIS_URL)


@dramatiq.actor(max_retries=0)
def extract_file(path: str) -> None:
    with pymupdf.open(path) as document:
        for page in document:
            page.get_text()
    counter.incr(f"{NAMESPACE}:done")
