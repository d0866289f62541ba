"""One user's receivers cannot hold up another user's callbacks: a breaker per receiver, a share of the senders.

Real receivers on loopback sockets, real Postgres and Redis; `deliver_due`
runs as the worker's I/O-lane actor runs it, two at once where the lane's
two slots matter.
"""

from __future__ import annotations

import threading
import time

import pytest

from docqueue.callbacks.sender import deliver_due
from tests.support.callbacks import delivery, ended_run_with_callback, settings_for_test
from tests.support.processes import wait_until
from tests.support.service_stub import ServiceStub, start_stub
from tests.support.slow_receiver import SlowReceiver


@pytest.fixture
def configure(monkeypatch):
    yield from settings_for_test(monkeypatch)


@pytest.fixture
def stubs():
    servers = []

    def start(**answers) -> ServiceStub:
        stub = ServiceStub(**answers)
        stub.url, server = start_stub(stub)
        servers.append(server)
        return stub

    yield start
    for server in servers:
        server.shutdown()


def test_one_users_dead_receiver_does_not_defer_another_users_delivery(make_user, session, configure, stubs):
    configure(BREAKER_FAIL_MAX="2", BREAKER_RESET_SECONDS="600", CALLBACK_BACKOFF_SECONDS="0")
    dead, healthy = stubs(default=(503, {}, b"down")), stubs()
    first_user, _ = make_user()
    other_user, _ = make_user()
    dead_ids = [ended_run_with_callback(session, first_user, dead.url + "/hook") for _ in range(2)]
    assert deliver_due() == 2  # both fail: that receiver's breaker opens
    healthy_id = ended_run_with_callback(session, other_user, healthy.url + "/hook")

    assert deliver_due() == 3
    row = delivery(session, healthy_id)
    # Before, one breaker for all receivers: "waiting: callback receiver unavailable until ...", for 10 minutes.
    assert (row.status, row.attempts, row.last_status_code) == ("delivered", 1, 200)
    assert len(healthy.requests) == 1
    assert len(dead.requests) == 2
    for dead_id in dead_ids:
        waiting = delivery(session, dead_id)
        assert (waiting.status, waiting.attempts) == ("pending", 1)
        assert waiting.last_error.startswith(f"waiting: callback receiver {dead.url.removeprefix('http://')} ")


def test_every_post_counts_as_an_attempt_trial_calls_included(make_user, session, configure, stubs):
    # The tester saw dead deliveries POSTed 15-27 times with CALLBACK_MAX_ATTEMPTS=3: the POST that opened
    # the breaker and each failed trial call after a reset were not counted.
    configure(BREAKER_FAIL_MAX="2", BREAKER_RESET_SECONDS="1", CALLBACK_BACKOFF_SECONDS="0", CALLBACK_MAX_ATTEMPTS="3")
    dead = stubs(default=(500, {}, b"down"))
    user_id, _ = make_user()
    delivery_id = ended_run_with_callback(session, user_id, dead.url + "/hook")

    def settled():
        deliver_due()
        return delivery(session, delivery_id).status != "pending" or len(dead.requests) > 3

    wait_until(settled, timeout=60, interval=0.3, message="the delivery to fail for good")
    row = delivery(session, delivery_id)
    assert (row.status, row.attempts, row.last_status_code) == ("failed", 3, 500)
    assert len(dead.requests) == 3
    # Failed for good: never POSTed again, however often the senders run.
    for _ in range(3):
        time.sleep(0.4)
        deliver_due()
    assert len(dead.requests) == 3


def test_a_users_hanging_receiver_holds_one_sender_and_another_users_callback_arrives(
    make_user, session, configure, stubs
):
    # Two senders at once, as the I/O lane's two slots would run them, each sending two POSTs at a time.
    configure(MAX_CONCURRENT_IO="2", CALLBACK_USER_IN_FLIGHT="1", CALLBACK_TIMEOUT_SECONDS="120")
    hanging, healthy = SlowReceiver("hang"), stubs()
    try:
        slow_user, _ = make_user()
        other_user, _ = make_user()
        hanging_ids = [ended_run_with_callback(session, slow_user, hanging.url) for _ in range(4)]
        healthy_id = ended_run_with_callback(session, other_user, healthy.url + "/hook")
        senders = [threading.Thread(target=deliver_due, daemon=True) for _ in range(2)]
        for sender in senders:
            sender.start()
        # Without the per-user cap the senders took the four oldest, all to the hanging receiver, and the
        # other user's callback waited for them (up to their deadline, 120 s here).
        wait_until(lambda: healthy.requests, timeout=30, message="the other user's callback to arrive")
        assert delivery(session, healthy_id).status == "delivered"
        assert (hanging.requests, hanging.most_open) == (1, 1)
        hanging.release.set()
        for sender in senders:
            sender.join(60)
        assert [delivery(session, i).status for i in hanging_ids].count("delivered") == 1
    finally:
        hanging.close()
