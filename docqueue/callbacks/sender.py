"""Sending due callbacks: signed POSTs through the `callbacks` circuit breaker.

Each POST's body is the delivery's JSON payload, signed with the owner's
callback secret: header `X-Docqueue-Signature: sha256=<hex HMAC-SHA256 of
the body>`. A 2xx answer delivers it; anything else is retried with backoff.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from concurrent.futures import ThreadPoolExecutor

import dramatiq
import requests

from docqueue.ai.breakers import ServiceFailed, ServiceUnavailable, guarded
from docqueue.callbacks import deliveries
from docqueue.db import session_scope
from docqueue.settings import get_settings

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Docqueue-Signature"
#: Seconds to wait for a receiver: a callback is a notification, not a long request.
TIMEOUT_SECONDS = 10
#: The actor (actors/callbacks.py) that runs `deliver_due`; named here so docqueue never imports actors.
ACTOR_NAME = "deliver_callbacks"
QUEUE_NAME = "documents_io"


def signature(secret: str, body: bytes) -> str:
    """The signature header's value for `body`: `sha256=` and the hex HMAC-SHA256 keyed by `secret`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _unreachable_reason(error: requests.RequestException) -> str:
    """Why the callback URL could not be reached, in words its owner can act on (the class goes to the log)."""
    # ConnectTimeout is a ConnectionError too, and SSLError one as well: the more precise reason first.
    if isinstance(error, requests.Timeout):
        return f"it did not answer within {TIMEOUT_SECONDS} seconds"
    if isinstance(error, requests.exceptions.SSLError):
        return "its TLS certificate could not be verified"
    if isinstance(error, requests.ConnectionError):
        return "the connection was refused or failed"
    if isinstance(error, requests.TooManyRedirects):
        return "it redirected too many times"
    return "the request could not be sent"


def _post(delivery: deliveries.DueDelivery) -> requests.Response:
    body = delivery.payload.encode()
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: signature(delivery.secret, body),
        "X-Docqueue-Delivery": str(delivery.id),
    }
    try:
        response = requests.post(delivery.url, data=body, headers=headers, timeout=TIMEOUT_SECONDS)
    except requests.RequestException as error:
        logger.warning("callback delivery %s could not reach %s: %r", delivery.id, delivery.url, error)
        raise ServiceFailed(f"could not reach the callback URL: {_unreachable_reason(error)}") from None
    if response.status_code >= 500:
        raise ServiceFailed(f"the callback URL answered HTTP {response.status_code}", response.status_code)
    return response


def _attempt(delivery: deliveries.DueDelivery) -> None:
    settings = get_settings()
    outcome = {"delivered": False, "status_code": None, "error": None}
    try:
        response = guarded("callbacks", lambda: _post(delivery))
        outcome["status_code"] = response.status_code
        outcome["delivered"] = 200 <= response.status_code < 300
        if not outcome["delivered"]:
            outcome["error"] = f"the callback URL answered HTTP {response.status_code}"
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


def deliver_due(limit: int = 100) -> int:
    """POST every due delivery (up to `limit`), MAX_CONCURRENT_IO at once; return how many were tried."""
    with session_scope() as session:
        due = deliveries.take_due(session, limit)
    if due:
        with ThreadPoolExecutor(max_workers=min(len(due), get_settings().max_concurrent_io)) as pool:
            list(pool.map(_attempt, due))
    return len(due)


def request_delivery() -> None:
    """Ask a worker to send due callbacks now; a lost message only waits for the clock's next tick."""
    message = dramatiq.Message(queue_name=QUEUE_NAME, actor_name=ACTOR_NAME, args=(), kwargs={}, options={})
    try:
        dramatiq.get_broker().enqueue(message)
    except Exception:
        logger.exception("could not ask for callback delivery; the clock will")
