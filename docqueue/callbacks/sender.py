"""Sending due callbacks: signed POSTs, each through its receiver's own circuit breaker.

Each POST's body is the delivery's JSON payload, signed with the owner's
callback secret (`signing.py`: `X-Docqueue-Signature: t=...,v1=...`) and
sent by `http_post.post`: to a vetted address, within CALLBACK_TIMEOUT_SECONDS
all told, following no redirect. A 2xx answer delivers it; anything else is
retried with backoff. What the owner sees of a failure never tells a
refused port from a slow or a silent one ("not delivered"): the detail goes
to the log only, so callbacks cannot be used to scan a network.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import dramatiq

from docqueue.ai.breakers import ServiceFailed, ServiceUnavailable, guarded, receiver_breaker_name
from docqueue.callbacks import deliveries, http_post
from docqueue.callbacks.signing import SIGNATURE_HEADER, signature_header
from docqueue.callbacks.urls import default_port
from docqueue.db import session_scope
from docqueue.settings import get_settings

logger = logging.getLogger(__name__)

#: The actor (actors/callbacks.py) that runs `deliver_due`; named here so docqueue never imports actors.
ACTOR_NAME = "deliver_callbacks"
QUEUE_NAME = "documents_io"
#: What the owner sees when a POST got no HTTP answer, whatever the reason.
NOT_DELIVERED = "not delivered: no HTTP answer from the callback URL"


def _post(delivery: deliveries.DueDelivery) -> int:
    settings = get_settings()
    body = delivery.payload.encode()
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: signature_header(delivery.keys, body, int(time.time())),
        "X-Docqueue-Delivery": str(delivery.id),
    }
    try:
        status = http_post.post(
            delivery.url,
            body,
            headers,
            deadline_seconds=settings.callback_timeout_seconds,
            allowed_hosts=settings.callback_allowed_hosts,
        )
    except http_post.NotDelivered as failure:
        logger.warning("callback delivery %s to %s not delivered: %s", delivery.id, delivery.url, failure)
        raise ServiceFailed(NOT_DELIVERED) from None
    if status >= 500:
        raise ServiceFailed(f"the callback URL answered HTTP {status}", status)
    return status


def _through_breaker(delivery: deliveries.DueDelivery) -> int:
    """POST through the receiver's breaker; a POST that was made counts as an attempt even if it was the trial.

    pybreaker answers a failed trial call (half-open) with CircuitBreakerError,
    as if no call had been made: the failure it swallowed is raised instead.
    """
    parts = urlsplit(delivery.url)
    name = receiver_breaker_name(parts.hostname or "", parts.port or default_port(parts.scheme))
    failures: list[ServiceFailed] = []

    def call() -> int:
        try:
            return _post(delivery)
        except ServiceFailed as failure:
            failures.append(failure)
            raise

    try:
        return guarded(name, call)
    except ServiceUnavailable:
        if failures:
            raise failures[0] from None
        raise


def _attempt(delivery: deliveries.DueDelivery) -> None:
    settings = get_settings()
    outcome = {"delivered": False, "status_code": None, "error": None}
    try:
        status = _through_breaker(delivery)
        outcome["status_code"] = status
        outcome["delivered"] = 200 <= status < 300
        if 300 <= status < 400:
            outcome["error"] = f"the callback URL answered HTTP {status} (redirects are not followed)"
        elif not outcome["delivered"]:
            outcome["error"] = f"the callback URL answered HTTP {status}"
    except ServiceUnavailable as waiting:
        with session_scope() as session:
            deliveries.postpone(session, delivery.id, waiting.until, str(waiting))
        return
    except ServiceFailed as failure:
        outcome["error"] = str(failure)
        outcome["status_code"] = failure.status_code
    with session_scope() as session:
        deliveries.record_attempt(
            session,
            delivery.id,
            max_attempts=settings.callback_max_attempts,
            backoff_seconds=settings.callback_backoff_seconds,
            **outcome,
        )


def deliver_due() -> int:
    """POST due deliveries, MAX_CONCURRENT_IO at once (all taken ones start together); return how many were tried.

    A call lasts at most about one CALLBACK_TIMEOUT_SECONDS, so the worker
    thread (an I/O-lane slot) it holds is soon free again.
    """
    settings = get_settings()
    with session_scope() as session:
        due = deliveries.take_due(
            session,
            settings.max_concurrent_io,
            per_user=settings.callback_user_in_flight,
            post_seconds=settings.callback_timeout_seconds,
        )
    if due:
        with ThreadPoolExecutor(max_workers=len(due)) as pool:
            list(pool.map(_attempt, due))
    return len(due)


def request_delivery() -> None:
    """Ask a worker to send due callbacks now; a lost message only waits for the clock's next tick."""
    message = dramatiq.Message(queue_name=QUEUE_NAME, actor_name=ACTOR_NAME, args=(), kwargs={}, options={})
    try:
        dramatiq.get_broker().enqueue(message)
    except Exception:
        logger.exception("could not ask for callback delivery; the clock will")
