"""Every setting docqueue reads, in one place, from the environment.

The README's settings table documents each field below; keep the two in step.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache


class SettingsError(RuntimeError):
    """A setting is missing or malformed; the message names it."""


def _int(name: str, default: int, minimum: int = 0) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{name} must be at least {minimum}, got {value}")
    return value


def normalize_database_url(url: str) -> str:
    """Point SQLAlchemy at psycopg 3 whatever scheme the PaaS hands us."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


@dataclass(frozen=True)
class Settings:
    database_url: str
    redis_url: str
    redis_namespace: str
    secret_key: str
    sentry_dsn: str
    ocr_concurrent_jobs: int
    ocr_timeout_seconds: int
    queue_batch_size: int
    max_concurrent_io: int
    max_upload_bytes: int
    max_attempts: int
    heartbeat_interval_seconds: int
    heartbeat_timeout_seconds: int
    no_worker_alert_seconds: int
    redispatch_after_seconds: int
    dispatch_interval_seconds: int
    retry_backoff_seconds: int
    pdf_worker_processes: int
    completed_retention_days: int
    cleanup_interval_seconds: int
    discovery_time_limit_seconds: int
    chunking_time_limit_seconds: int
    image_time_limit_seconds: int
    embedding_time_limit_seconds: int
    time_limit_pages_per_step: int
    time_limit_mb_per_step: int
    time_limit_max_factor: int
    memory_pause_percent: int
    worker_max_messages: int
    worker_max_rss_mb: int

    def require_database_url(self) -> str:
        if not self.database_url:
            raise SettingsError("DATABASE_URL is not set (`docqueue up` starts an embedded Postgres for you)")
        return self.database_url

    def require_redis_url(self) -> str:
        if not self.redis_url:
            raise SettingsError("REDIS_URL is not set (`docqueue up` starts an embedded Redis for you)")
        return self.redis_url


def load_settings() -> Settings:
    """Read the settings from the environment as it is now."""
    database_url = os.environ.get("DATABASE_URL", "")
    return Settings(
        database_url=normalize_database_url(database_url) if database_url else "",
        redis_url=os.environ.get("REDIS_URL", ""),
        redis_namespace=os.environ.get("REDIS_NAMESPACE", "dramatiq"),
        secret_key=os.environ.get("SECRET_KEY", ""),
        sentry_dsn=os.environ.get("SENTRY_DSN", ""),
        ocr_concurrent_jobs=_int("OCR_CONCURRENT_JOBS", 4, minimum=1),
        ocr_timeout_seconds=_int("OCR_TIMEOUT_SECONDS", 300, minimum=1),
        queue_batch_size=_int("QUEUE_BATCH_SIZE", 1000, minimum=1),
        max_concurrent_io=_int("MAX_CONCURRENT_IO", 50, minimum=1),
        max_upload_bytes=_int("MAX_UPLOAD_MB", 200, minimum=1) * 1024 * 1024,
        max_attempts=_int("MAX_ATTEMPTS", 3, minimum=1),
        heartbeat_interval_seconds=_int("HEARTBEAT_INTERVAL_SECONDS", 30, minimum=1),
        heartbeat_timeout_seconds=_int("HEARTBEAT_TIMEOUT_SECONDS", 120, minimum=2),
        no_worker_alert_seconds=_int("NO_WORKER_ALERT_SECONDS", 300, minimum=1),
        redispatch_after_seconds=_int("REDISPATCH_AFTER_SECONDS", 120, minimum=1),
        dispatch_interval_seconds=_int("DISPATCH_INTERVAL_SECONDS", 5, minimum=1),
        retry_backoff_seconds=_int("RETRY_BACKOFF_SECONDS", 15, minimum=0),
        pdf_worker_processes=_int("PDF_WORKER_PROCESSES", os.cpu_count() or 1, minimum=1),
        completed_retention_days=_int("COMPLETED_RETENTION_DAYS", 7, minimum=1),
        cleanup_interval_seconds=_int("CLEANUP_INTERVAL_SECONDS", 24 * 60 * 60, minimum=1),
        discovery_time_limit_seconds=_int("DISCOVERY_TIME_LIMIT_SECONDS", 300, minimum=1),
        chunking_time_limit_seconds=_int("CHUNKING_TIME_LIMIT_SECONDS", 180, minimum=1),
        image_time_limit_seconds=_int("IMAGE_TIME_LIMIT_SECONDS", 600, minimum=1),
        embedding_time_limit_seconds=_int("EMBEDDING_TIME_LIMIT_SECONDS", 1200, minimum=1),
        time_limit_pages_per_step=_int("TIME_LIMIT_PAGES_PER_STEP", 200, minimum=1),
        time_limit_mb_per_step=_int("TIME_LIMIT_MB_PER_STEP", 50, minimum=1),
        time_limit_max_factor=_int("TIME_LIMIT_MAX_FACTOR", 10, minimum=1),
        memory_pause_percent=_int("MEMORY_PAUSE_PERCENT", 80, minimum=1),
        worker_max_messages=_int("WORKER_MAX_MESSAGES", 0),
        worker_max_rss_mb=_int("WORKER_MAX_RSS_MB", 0),
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once."""
    return load_settings()
