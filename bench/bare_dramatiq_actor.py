"""Baseline for bench/pipeline_throughput.py: the same PDF work as a bare Dramatiq actor.

No Postgres, no claims, no leases, no stored results: a message names a
file, and the actor does the PyMuPDF work docqueue's pipeline does on it
(`bench.pdf_work`), then bumps a Redis counter.
"""

import os

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker

from bench.pdf_work import pdf_work

REDIS_URL = os.environ["REDIS_URL"]
NAMESPACE = os.environ["BENCH_NAMESPACE"]

dramatiq.set_broker(RedisBroker(url=REDIS_URL, namespace=NAMESPACE))
counter = redis.Redis.from_url(REDIS_URL)


@dramatiq.actor(max_retries=0)
def extract_file(path: str) -> None:
    pdf_work(path)
    counter.incr(f"{NAMESPACE}:done")
