"""The issue's probe through the real Procfile processes: whatever receivers a viewer names, others' work goes on.

A hostile viewer's documents name a receiver that trickles a byte every
second (six of them: well inside the POST's deadline, so it never finished
a POST under the old per-read timeout), one that hangs, and a closed port.
Once their callbacks have been sent and retried, another user's small
document must still complete, and its callback arrive. Before, it stayed at
`embed` for minutes: both I/O-lane slots were held by deliveries that never
ended.

The worker and clock run the probe's scenario at about a third of the
deployed timings (the POST deadline, the receiver breaker's reset, the
callback backoff), so the same sequence of sends, failures, an open breaker
and its trials fits in a third of the time.
"""

from __future__ import annotations

import time

import requests

from tests.support.factories import make_pdf
from tests.support.processes import free_port, start_web, wait_until
from tests.support.service_stub import ServiceStub, start_stub
from tests.support.slow_receiver import SlowReceiver

#: A third of the deployed 10 s deadline, 60 s breaker reset and 30 s callback backoff.
CALLBACK_TIMINGS = {"CALLBACK_TIMEOUT_SECONDS": 3, "BREAKER_RESET_SECONDS": 20, "CALLBACK_BACKOFF_SECONDS": 10}
#: How long the hostile deliveries are retried before the other user uploads: the 130 s that once covered
#: the old 120 s take lease, at the same third.
RETRIED_FOR_SECONDS = 45


def upload(base_url: str, token: str, callback_url: str) -> int:
    response = requests.post(
        f"{base_url}/api/documents",
        files={"file": ("small.pdf", make_pdf(["a small document"]))},
        data={"callback_url": callback_url},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert response.status_code == 202, response.text
    return response.json()["id"]


def status(base_url: str, token: str, document_id: int) -> str:
    response = requests.get(
        f"{base_url}/api/documents/{document_id}", headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    return response.json()["status"]


def test_another_users_small_document_completes_whatever_receivers_a_viewer_names(procfile, make_user):
    # A byte a second: a per-read timeout never fires, however short; only the POST's whole deadline ends it.
    trickler, hanging = SlowReceiver("trickle", interval=1.0, trickle_for=600), SlowReceiver("hang")
    healthy = ServiceStub()
    healthy_url, healthy_server = start_stub(healthy)
    try:
        procfile("worker", **CALLBACK_TIMINGS)
        procfile("clock", **CALLBACK_TIMINGS)
        base_url = start_web(procfile)
        _, hostile = make_user()
        _, other = make_user()
        receivers = [trickler.url] * 6 + [hanging.url] * 2 + [f"http://127.0.0.1:{free_port()}/"]
        hostile_ids = [upload(base_url, hostile, url) for url in receivers]
        wait_until(
            lambda: all(status(base_url, hostile, i) in ("completed", "failed") for i in hostile_ids),
            timeout=300,
            message="the hostile viewer's documents to finish",
        )
        wait_until(lambda: trickler.requests, timeout=120, message="the hostile viewer's callbacks to be sent")
        first_sent = time.monotonic()
        # Until the trickling receiver has had its deliveries POSTed twice, or for RETRIED_FOR_SECONDS (its
        # breaker opens after five failures, so mostly the latter). Before, the first POSTs never ended and
        # those not yet sent waited behind them, or were sent again after the take lease with the first
        # still open: either way both I/O-lane slots were held by then.
        wait_until(
            lambda: trickler.requests >= 12 or time.monotonic() - first_sent > RETRIED_FOR_SECONDS,
            timeout=240,
            interval=1,
            message="the hostile viewer's callbacks to be retried",
        )

        started = time.monotonic()
        other_id = upload(base_url, other, healthy_url + "/done")
        # The probe's measure is 60 s; twice that here, as this machine is shared. Before: never, while
        # the receivers held on.
        wait_until(
            lambda: status(base_url, other, other_id) == "completed",
            timeout=120,
            message="the other user's document to complete",
        )
        print(f"the other user's document completed {time.monotonic() - started:.1f} s after its upload")
        wait_until(lambda: healthy.requests, timeout=60, message="the other user's callback to arrive")
    finally:
        trickler.close()
        hanging.close()
        healthy_server.shutdown()
