"""Circuit breakers around each outside service, shared by every worker process.

A breaker's state lives in Redis (pybreaker's CircuitRedisStorage, one
namespace per breaker), so once BREAKER_FAIL_MAX calls to a service have
failed in a row, every process stops calling it for BREAKER_RESET_SECONDS.
A stage that meets an open breaker is deferred until it closes, without
using up an attempt (`ServiceUnavailable`, handled by the stage runner).
Opening one sends a Sentry event (`breaker_alert.py`).

Callback receivers get one breaker each (`receiver_breaker_name`: host and
port), so one user's dead receiver never defers another's deliveries; an
opening one alerts no one, as a user's receiver is not the service's
health, and its object is made per call rather than kept, as the names are
unbounded.

pybreaker holds its lock for the whole wrapped call, so one breaker object
shared by threads would make parallel requests take turns: each thread gets
its own objects over the same Redis state instead.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import TypeVar

import pybreaker
import redis
from dramatiq.middleware import Interrupt
from sqlalchemy.orm import Session

from docqueue.accounts.audit import record_audit
from docqueue.ai.breaker_alert import OpeningReporter
from docqueue.errors import TransientError
from docqueue.models import User
from docqueue.settings import Settings, get_settings

T = TypeVar("T")

#: Breaker name -> how the product names that service to a person.
SERVICES = {
    "embeddings": "embeddings provider",
    "chat": "chat provider",
}
#: Breaker names of callback receivers start with this, then `host:port`.
RECEIVER_PREFIX = "receiver:"


def receiver_breaker_name(host: str, port: int) -> str:
    """The breaker name of the callback receiver at `host`:`port`."""
    return f"{RECEIVER_PREFIX}{host.lower()}:{port}"


def service_name(name: str) -> str:
    """How the product names breaker `name`'s service to a person."""
    if name.startswith(RECEIVER_PREFIX):
        return f"callback receiver {name.removeprefix(RECEIVER_PREFIX)}"
    return SERVICES[name]


class ServiceFailed(Exception):
    """A call to an outside service failed in a way that counts against its breaker (5xx, timeout, refused)."""

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class ServiceUnavailable(TransientError):
    """The service's breaker is open: wait until `until` rather than spend an attempt."""

    def __init__(self, breaker: str, until: datetime) -> None:
        self.breaker = breaker
        self.until = until
        super().__init__(f"waiting: {service_name(breaker)} unavailable until {until.astimezone(UTC):%H:%M:%S} UTC")


def _not_a_service_failure(error: BaseException) -> bool:
    # A refused request or a malformed answer is not the service being down.
    return not isinstance(error, ServiceFailed)


@lru_cache(maxsize=1)
def _redis_for(url: str) -> redis.Redis:
    return redis.Redis.from_url(url)


def _storage(name: str, settings: Settings) -> pybreaker.CircuitRedisStorage:
    return pybreaker.CircuitRedisStorage(
        pybreaker.STATE_CLOSED,
        _redis_for(settings.require_redis_url()),
        namespace=f"{settings.redis_namespace}:breaker:{name}",
    )


_local = threading.local()


def _receiver_breaker(name: str, settings: Settings) -> pybreaker.CircuitBreaker:
    return pybreaker.CircuitBreaker(
        fail_max=settings.breaker_fail_max,
        reset_timeout=settings.breaker_reset_seconds,
        exclude=[Interrupt, _not_a_service_failure],
        state_storage=_storage(name, settings),
        name=name,
    )


def breaker(name: str) -> pybreaker.CircuitBreaker:
    """This thread's breaker object for service `name` (state shared through Redis)."""
    settings = get_settings()
    if name.startswith(RECEIVER_PREFIX):
        return _receiver_breaker(name, settings)
    cache = getattr(_local, "breakers", None)
    if cache is None or _local.settings is not settings:
        cache = _local.breakers = {}
        _local.settings = settings
    if name not in cache:
        cache[name] = pybreaker.CircuitBreaker(
            fail_max=settings.breaker_fail_max,
            reset_timeout=settings.breaker_reset_seconds,
            # Dramatiq's interrupts (time limit, shutdown) say nothing about the service.
            exclude=[Interrupt, _not_a_service_failure],
            state_storage=_storage(name, settings),
            listeners=[
                OpeningReporter(
                    SERVICES[name],
                    _redis_for(settings.require_redis_url()),
                    f"{settings.redis_namespace}:breaker:{name}:opening_reported",
                    settings.breaker_reset_seconds,
                )
            ],
            name=name,
        )
    return cache[name]


def open_until(name: str) -> datetime:
    """When breaker `name`, open now, lets a trial call through."""
    opened_at = breaker(name)._state_storage.opened_at or datetime.now(UTC)
    return opened_at + timedelta(seconds=get_settings().breaker_reset_seconds)


def guarded(name: str, call: Callable[[], T]) -> T:
    """Run `call` through breaker `name`; ServiceUnavailable while it is open.

    `call` raises ServiceFailed for failures that should count against the service.
    """
    try:
        return breaker(name).call(call)
    except pybreaker.CircuitBreakerError:
        raise ServiceUnavailable(name, open_until(name)) from None


@dataclass(frozen=True)
class BreakerState:
    name: str
    service: str
    state: str
    failures: int
    open_until: datetime | None
    #: When the breaker last opened (None while it never has, or its state is unknown).
    opened_at: datetime | None = None
    #: Whether the settings name this service at all (callbacks: always, each document names its receiver).
    configured: bool = True

    @property
    def shown(self) -> bool:
        """Whether the dashboard lists it: a service not configured is news only if its breaker ever tripped."""
        return self.configured or self.state != pybreaker.STATE_CLOSED or self.failures > 0

    @property
    def holding_work(self) -> bool:
        """Whether its work waits for it now (open: no calls until `open_until`; half-open: one trial call)."""
        return self.state in (pybreaker.STATE_OPEN, pybreaker.STATE_HALF_OPEN)

    def as_dict(self) -> dict:
        return {
            "state": self.state,
            "service": self.service,
            "failures": self.failures,
            "open_until": self.open_until.isoformat() if self.open_until else None,
        }


def breaker_states() -> dict[str, BreakerState]:
    """Every breaker's state as the workers share it, for `/api/queue/stats` and the admin page.

    With Redis unreachable the state is "unknown": the stats still answer.
    """
    settings = get_settings()
    configured = {
        "embeddings": settings.embeddings_provider == "openai",  # the local model calls no service
        "chat": bool(settings.chat_base_url),
        "callbacks": True,
    }
    states = {}
    for name, service in SERVICES.items():
        try:
            current = breaker(name)
            state = current.current_state
            until = open_until(name) if state == pybreaker.STATE_OPEN else None
            opened_at = current._state_storage.opened_at if state != pybreaker.STATE_CLOSED else None
            states[name] = BreakerState(name, service, state, current.fail_counter, until, opened_at, configured[name])
        except redis.RedisError:
            states[name] = BreakerState(name, service, "unknown", 0, None, None, configured[name])
    return states


def close_by_hand(session: Session, actor: User | None, name: str) -> None:
    """Let calls to service `name` through again now, before its reset time (an operator saw it is back).

    Audited under `actor` in the caller's transaction. KeyError for an unknown name.
    """
    if name not in SERVICES:
        raise KeyError(name)
    record_audit(session, actor, "breaker.close", 1, SERVICES[name])
    breaker(name).close()
