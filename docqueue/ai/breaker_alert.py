"""One Sentry event when a circuit breaker opens, from the process that opened it.

A breaker's state is shared through Redis, and pybreaker tells a process's
listeners about every change it notices, also the ones another process made:
every worker thread that next looks at an opened breaker hears "closed ->
open". Only the opener reports. Inside `CircuitBreaker.open()` the listeners
run before the new state is written to Redis, so an opener still finds
Redis closed, while a process that noticed the change finds it open.
Openers racing past the threshold together share one report through a
Redis key only the first sets.
"""

from __future__ import annotations

import pybreaker
import redis
import sentry_sdk


class OpeningReporter(pybreaker.CircuitBreakerListener):
    """Sends one Sentry event when this process opens a closed breaker."""

    def __init__(self, service: str, client: redis.Redis, key: str, reset_seconds: int) -> None:
        self.service = service
        self.client = client
        self.key = key
        self.reset_seconds = reset_seconds

    def state_change(
        self,
        cb: pybreaker.CircuitBreaker,
        old_state: pybreaker.CircuitBreakerState | None,
        new_state: pybreaker.CircuitBreakerState,
    ) -> None:
        """Report a closed -> open change made here, once across processes."""
        if old_state is None or (old_state.name, new_state.name) != (pybreaker.STATE_CLOSED, pybreaker.STATE_OPEN):
            return
        if cb.current_state != pybreaker.STATE_CLOSED:
            return  # another process opened it; this one only noticed
        # Racing openers arrive within moments; the next opening needs the breaker closed again, which
        # takes BREAKER_RESET_SECONDS (less a second: Redis keeps opened_at in whole seconds).
        try:
            first = self.client.set(self.key, 1, nx=True, ex=max(1, self.reset_seconds - 1))
        except redis.RedisError:
            return  # Redis is the breaker's state too: without it the breaker cannot stay open
        if not first:
            return
        sentry_sdk.capture_message(
            f"Circuit breaker opened: the {self.service} failed {cb.fail_max} calls in a row; "
            f"calls to it wait {self.reset_seconds} s",
            level="error",
        )
