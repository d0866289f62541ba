"""The IO lane cap: slow outside-service calls never take every worker thread from PDF work.

A real Redis broker and an in-process Dramatiq worker with three threads:
three slow IO-lane messages and then one CPU-lane message. Without the cap
the IO messages would hold all three threads until they finish.
"""

from __future__ import annotations

import threading

import dramatiq
from dramatiq import Worker
from dramatiq.brokers.redis import RedisBroker

from tests.support.processes import wait_until


def test_io_lane_messages_over_the_cap_wait_and_pdf_work_still_runs(test_env):
    # `actors` builds the app's broker on import, which needs the test environment first.
    from actors.middleware.io_lane_cap import IoLaneCap

    broker = RedisBroker(url=test_env["REDIS_URL"], namespace=test_env["REDIS_NAMESPACE"] + "-io-lane")
    broker.add_middleware(IoLaneCap(limit=1, requeue_delay=50))
    lock = threading.Lock()
    running, most_at_once, finished = [0], [0], []
    release, pdf_done = threading.Event(), threading.Event()

    @dramatiq.actor(broker=broker, queue_name="test_io", io_lane=True, max_retries=0)
    def slow_service_call(n: int) -> None:
        with lock:
            running[0] += 1
            most_at_once[0] = max(most_at_once[0], running[0])
        release.wait(60)
        with lock:
            running[0] -= 1
            finished.append(n)

    @dramatiq.actor(broker=broker, queue_name="test_cpu", max_retries=0)
    def pdf_work() -> None:
        pdf_done.set()

    for n in range(3):
        slow_service_call.send(n)
    worker = Worker(broker, worker_threads=3, worker_timeout=100)
    worker.start()
    try:
        wait_until(lambda: running[0] == 1, timeout=30, message="an IO-lane message to start")
        pdf_work.send()
        # The IO message is still blocked, yet PDF work got a thread.
        wait_until(pdf_done.is_set, timeout=30, message="PDF work to run beside the blocked IO call")
        assert not finished
        release.set()
        wait_until(lambda: len(finished) == 3, timeout=60, message="every IO-lane message to run in the end")
        assert sorted(finished) == [0, 1, 2]
        assert most_at_once[0] == 1
    finally:
        release.set()
        worker.stop()
        broker.close()
