"""At start: does this Redis evict keys when full? Small managed plans often do (`allkeys-lru`).

Dramatiq keeps every queued message as a plain key with no expiry, so an
`allkeys-*` policy can delete messages under memory pressure without a
word; a `volatile-*` policy evicts only keys with an expiry (rate-limit
windows, the breakers' "reported" marks), and `noeviction` refuses writes
instead. Managed Redis often refuses CONFIG: then the check says it could
not look. The worker, the clock and the web each run it as they build
their broker (`broker.py`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import redis

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvictionCheck:
    """What `CONFIG GET maxmemory-policy` said: the policy, or None with `reason` when it could not be read."""

    policy: str | None
    reason: str = ""

    @property
    def evicts_untimed_keys(self) -> bool:
        """True when the policy may delete keys without an expiry: queued messages among them."""
        return self.policy is not None and self.policy.startswith("allkeys-")


def check_eviction_policy(client: redis.Redis) -> EvictionCheck:
    """Read the server's `maxmemory-policy`; never raises for a Redis that refuses or cannot answer."""
    try:
        answer = client.config_get("maxmemory-policy")
    except redis.ResponseError as error:
        # Managed services rename or forbid CONFIG ("unknown command", "NOPERM").
        return EvictionCheck(None, f"the server refused CONFIG GET ({error})")
    except redis.RedisError as error:
        return EvictionCheck(None, f"Redis did not answer ({type(error).__name__}: {error})")
    policy = answer.get("maxmemory-policy") or answer.get(b"maxmemory-policy")
    if policy is None:
        return EvictionCheck(None, "the server did not name its maxmemory-policy")
    return EvictionCheck(policy.decode() if isinstance(policy, bytes) else str(policy))


def warn_if_evicting(client: redis.Redis, lost_message_after_seconds: int) -> EvictionCheck:
    """Log a warning when Redis evicts keys (or when that could not be checked); return what was found."""
    check = check_eviction_policy(client)
    if check.evicts_untimed_keys:
        logger.warning(
            "Redis evicts keys when full (maxmemory-policy %s): it can delete queued job messages and the "
            "broker's bookkeeping without an error, so jobs stall until the dispatcher re-sends them from "
            "Postgres (after LOST_MESSAGE_AFTER_SECONDS, %s s) and breaker states and rate limits vanish. "
            "Set maxmemory-policy to noeviction (or a volatile-* policy) on this Redis.",
            check.policy,
            lost_message_after_seconds,
        )
    elif check.policy is None:
        logger.warning(
            "could not check whether Redis evicts keys (maxmemory-policy): %s. A policy of allkeys-* "
            "deletes queued job messages when Redis is full; make sure the plan uses noeviction.",
            check.reason,
        )
    else:
        logger.info("Redis maxmemory-policy is %s: queued messages are never evicted", check.policy)
    return check
