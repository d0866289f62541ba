"""Every setting docqueue reads, in one place, from the environment.

docs/operating.md's settings table documents each field below; a test keeps the two in step.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit


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


def _languages(name: str, default: str) -> str:
    raw = os.environ.get(name) or default
    # Handed to Tesseract as its language list: codes joined by '+', nothing else.
    if not re.fullmatch(r"[A-Za-z0-9_]+(\+[A-Za-z0-9_]+)*", raw):
        raise SettingsError(f"{name} must be Tesseract language codes joined by '+' (e.g. eng+deu), got {raw!r}")
    return raw


def _choice(name: str, choices: tuple[str, ...]) -> str:
    value = os.environ.get(name, "").strip().lower()
    if value not in choices:
        allowed = ", ".join(repr(choice) for choice in choices if choice)
        raise SettingsError(f"{name} must be one of {allowed} (or unset), got {value!r}")
    return value


def _worker_connections(worker_threads: int) -> int:
    value = _int("DB_WORKER_CONNECTIONS", worker_threads + 2, minimum=2)
    if value <= worker_threads:
        # Each thread may hold two at once (a reader and a batch writer): fewer than threads + 1 can deadlock.
        raise SettingsError(f"DB_WORKER_CONNECTIONS must be more than WORKER_THREADS ({worker_threads}), got {value}")
    return value


def _allowed_hosts(name: str) -> tuple[str, ...]:
    """Host names, addresses and networks (CIDR) an operator lets callbacks reach despite being internal."""
    entries = tuple(entry.strip().lower() for entry in os.environ.get(name, "").split(",") if entry.strip())
    for entry in entries:
        if not re.fullmatch(r"[a-z0-9.:_/-]+", entry):
            raise SettingsError(f"{name} must be host names, addresses or networks separated by commas, got {entry!r}")
        if "/" in entry:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise SettingsError(f"{name}: {entry!r} is not a network such as 10.0.0.0/8") from None
    return entries


def normalize_database_url(url: str) -> str:
    """Point SQLAlchemy at psycopg 3 whatever scheme the PaaS hands us."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def redis_url_with_tls(url: str, cert_reqs: str, ca_certs: str) -> str:
    """`url` with REDIS_TLS_CERT_REQS / REDIS_TLS_CA_CERTS added as redis-py's query parameters.

    Only a `rediss://` URL takes them (the embedded Redis's `unix://` ignores
    them); a parameter the URL names itself wins. Every Redis client (broker,
    breakers, rate limiter) is built from this one URL, so all get the same TLS.
    """
    parts = urlsplit(url)
    if parts.scheme != "rediss":
        return url
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    for name, value in (("ssl_cert_reqs", cert_reqs), ("ssl_ca_certs", ca_certs)):
        if value and name not in query:
            query[name] = value
    return urlunsplit(parts._replace(query=urlencode(query)))


def _machine_name(name: str) -> str:
    raw = os.environ.get(name) or socket.gethostname()
    # Worker ids are `machine:pid:suffix`, read back by splitting on ':'.
    if ":" in raw or not raw.isprintable() or len(raw) > 100:
        raise SettingsError(f"{name} must be at most 100 printable characters without ':', got {raw!r}")
    return raw


@dataclass(frozen=True)
class Settings:
    database_url: str
    database_direct_url: str
    database_pooler: str
    redis_url: str
    redis_namespace: str
    machine_name: str
    secret_key: str
    sentry_dsn: str
    ocr_concurrent_jobs: int
    bulk_reserved_slots: int
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
    pdf_process_memory_mb: int
    max_page_text_chars: int
    max_image_pixels: int
    # -- per-document budgets and per-user quotas: no one upload or user may bankrupt the service
    max_document_pages: int
    max_document_text_chars: int
    max_document_chunks: int
    max_ai_calls_per_document: int
    min_ai_image_side: int
    default_storage_quota_mb: int
    default_daily_page_quota: int
    lost_message_after_seconds: int
    db_lock_timeout_ms: int
    db_idle_in_transaction_timeout_seconds: int
    db_web_connections: int
    db_worker_connections: int
    db_pdf_process_connections: int
    db_clock_connections: int
    db_ingest_connections: int
    db_pool_timeout_seconds: int
    web_header_timeout_seconds: int
    web_body_timeout_seconds: int
    web_control_socket: str
    ocr_languages: str
    tessdata_prefix: str
    ocr_dpi: int
    ocr_range_pages: int
    ocr_seconds_per_page: int
    max_content_nesting: int
    max_content_operators: int
    # -- outside services (embeddings, chat, callbacks) and the stages that use them
    embeddings_provider: str
    embeddings_base_url: str
    embeddings_api_key: str
    embeddings_model: str
    embeddings_image_model: str
    embeddings_batch_size: int
    chat_base_url: str
    chat_api_key: str
    chat_model: str
    chat_vision_model: str
    ai_timeout_seconds: int
    ai_max_tries: int
    ai_retry_backoff_seconds: float
    ai_max_retry_after_seconds: int
    breaker_fail_max: int
    breaker_reset_seconds: int
    io_lane_threads: int
    io_lane_requeue_delay_ms: int
    image_pages_per_batch: int
    small_document_max_bytes: int
    small_document_max_pages: int
    rows_per_statement: int
    chunk_size_chars: int
    chunk_overlap_chars: int
    callback_max_attempts: int
    callback_backoff_seconds: int
    callback_timeout_seconds: int
    callback_user_in_flight: int
    callback_allowed_hosts: tuple[str, ...]
    callback_secret_grace_hours: int
    remember_days: int
    proxy_hops: int
    login_failures_per_minute: int
    metrics_token: str
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

    @property
    def behind_transaction_pooler(self) -> bool:
        """Whether DATABASE_URL reaches Postgres through a transaction-mode pooler (PgBouncer)."""
        return self.database_pooler == "transaction"

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
    direct_url = os.environ.get("DATABASE_DIRECT_URL", "")
    # A worker process's threads may each hold two connections at once (a stage's reader and its batch writer),
    # and its heartbeat one more: WORKER_THREADS + 2 can never all wait for each other.
    worker_threads = _int("WORKER_THREADS", 4, minimum=1)
    return Settings(
        database_url=normalize_database_url(database_url) if database_url else "",
        database_direct_url=normalize_database_url(direct_url) if direct_url else "",
        database_pooler=_choice("DATABASE_POOLER", ("", "transaction")),
        redis_url=redis_url_with_tls(
            os.environ.get("REDIS_URL", ""),
            _choice("REDIS_TLS_CERT_REQS", ("", "none", "optional", "required")),
            os.environ.get("REDIS_TLS_CA_CERTS", ""),
        ),
        redis_namespace=os.environ.get("REDIS_NAMESPACE", "dramatiq"),
        machine_name=_machine_name("MACHINE_NAME"),
        secret_key=os.environ.get("SECRET_KEY", ""),
        sentry_dsn=os.environ.get("SENTRY_DSN", ""),
        ocr_concurrent_jobs=_int("OCR_CONCURRENT_JOBS", 4, minimum=1),
        bulk_reserved_slots=_int("BULK_RESERVED_SLOTS", 1, minimum=0),
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
        # A PDF process needs ~560 MB of address space just to have PyMuPDF imported.
        pdf_process_memory_mb=_int("PDF_PROCESS_MEMORY_MB", 1024, minimum=768),
        max_page_text_chars=_int("MAX_PAGE_TEXT_CHARS", 1_000_000, minimum=1),
        # Pillow's default decompression-bomb limit.
        max_image_pixels=_int("MAX_IMAGE_PIXELS", 89_478_485, minimum=1),
        # A real page holds a few thousand characters: 5,000 pages of 4,000 is 20 M, and 25,000 chunks of 1,000
        # with their overlap; the AI budget covers their embedding requests (10 a request) and a few hundred more.
        # A real archive holds 10,000-page documents (the hostile-file suite completes one): refuse only beyond.
        max_document_pages=_int("MAX_DOCUMENT_PAGES", 10000, minimum=1),
        max_document_text_chars=_int("MAX_DOCUMENT_TEXT_CHARS", 20_000_000, minimum=1),
        max_document_chunks=_int("MAX_DOCUMENT_CHUNKS", 25_000, minimum=1),
        max_ai_calls_per_document=_int("MAX_AI_CALLS_PER_DOCUMENT", 3000, minimum=1),
        min_ai_image_side=_int("MIN_AI_IMAGE_SIDE", 32, minimum=1),
        default_storage_quota_mb=_int("DEFAULT_STORAGE_QUOTA_MB", 10_240, minimum=0),
        default_daily_page_quota=_int("DEFAULT_DAILY_PAGE_QUOTA", 10_000, minimum=0),
        lost_message_after_seconds=_int("LOST_MESSAGE_AFTER_SECONDS", 15, minimum=1),
        db_lock_timeout_ms=_int("DB_LOCK_TIMEOUT_MS", 10_000, minimum=0),
        db_idle_in_transaction_timeout_seconds=_int("DB_IDLE_IN_TRANSACTION_TIMEOUT_SECONDS", 60, minimum=0),
        db_web_connections=_int("DB_WEB_CONNECTIONS", 5, minimum=1),
        db_worker_connections=_worker_connections(worker_threads),
        db_pdf_process_connections=_int("DB_PDF_PROCESS_CONNECTIONS", 2, minimum=2),
        db_clock_connections=_int("DB_CLOCK_CONNECTIONS", 2, minimum=2),
        db_ingest_connections=_int("DB_INGEST_CONNECTIONS", 3, minimum=2),
        db_pool_timeout_seconds=_int("DB_POOL_TIMEOUT_SECONDS", 30, minimum=1),
        web_header_timeout_seconds=_int("WEB_HEADER_TIMEOUT_SECONDS", 10, minimum=1),
        web_body_timeout_seconds=_int("WEB_BODY_TIMEOUT_SECONDS", 30, minimum=1),
        # Empty: gunicorn's own default (~/.gunicorn/gunicorn.ctl). `docqueue up` keeps it under DOCQUEUE_HOME.
        web_control_socket=os.environ.get("WEB_CONTROL_SOCKET", ""),
        ocr_languages=_languages("OCR_LANGUAGES", "eng"),
        # Where Debian's tesseract-ocr-<lang> packages put their models.
        tessdata_prefix=os.environ.get("TESSDATA_PREFIX") or "/usr/share/tesseract-ocr/5/tessdata",
        ocr_dpi=_int("OCR_DPI", 300, minimum=72),
        ocr_range_pages=_int("OCR_RANGE_PAGES", 8, minimum=1),
        # A real scan's page takes 0.3-9 s (one thread, orientation included): 30 s a page is far past any of them.
        ocr_seconds_per_page=_int("OCR_SECONDS_PER_PAGE", 30, minimum=1),
        # Real files nest forms a few levels deep; a bomb draws the next form several times, dozens deep.
        max_content_nesting=_int("MAX_CONTENT_NESTING", 12, minimum=1),
        # ~4 s of MuPDF's text extraction here; the densest real drawings run a few hundred thousand.
        max_content_operators=_int("MAX_CONTENT_OPERATORS", 5_000_000, minimum=0),
        embeddings_provider=_choice("EMBEDDINGS_PROVIDER", ("", "openai", "local")),
        embeddings_base_url=os.environ.get("EMBEDDINGS_BASE_URL", "").rstrip("/"),
        embeddings_api_key=os.environ.get("EMBEDDINGS_API_KEY", ""),
        embeddings_model=os.environ.get("EMBEDDINGS_MODEL", "text-embedding-3-small"),
        embeddings_image_model=os.environ.get("EMBEDDINGS_IMAGE_MODEL", ""),
        embeddings_batch_size=_int("EMBEDDINGS_BATCH_SIZE", 10, minimum=1),
        chat_base_url=os.environ.get("CHAT_BASE_URL", "").rstrip("/"),
        chat_api_key=os.environ.get("CHAT_API_KEY", ""),
        chat_model=os.environ.get("CHAT_MODEL", "gpt-4o-mini"),
        chat_vision_model=os.environ.get("CHAT_VISION_MODEL", ""),
        ai_timeout_seconds=_int("AI_TIMEOUT_SECONDS", 60, minimum=1),
        ai_max_tries=_int("AI_MAX_TRIES", 4, minimum=1),
        ai_retry_backoff_seconds=_int("AI_RETRY_BACKOFF_MS", 500) / 1000,
        ai_max_retry_after_seconds=_int("AI_MAX_RETRY_AFTER_SECONDS", 60),
        breaker_fail_max=_int("BREAKER_FAIL_MAX", 5, minimum=1),
        breaker_reset_seconds=_int("BREAKER_RESET_SECONDS", 60, minimum=1),
        io_lane_threads=_int("IO_LANE_THREADS", 2, minimum=1),
        io_lane_requeue_delay_ms=_int("IO_LANE_REQUEUE_DELAY_MS", 1000, minimum=1),
        image_pages_per_batch=_int("IMAGE_PAGES_PER_BATCH", 2, minimum=1),
        small_document_max_bytes=_int("SMALL_DOCUMENT_MAX_BYTES", 4 * 1024 * 1024),
        small_document_max_pages=_int("SMALL_DOCUMENT_MAX_PAGES", 50, minimum=1),
        rows_per_statement=_int("ROWS_PER_STATEMENT", 1000, minimum=1),
        chunk_size_chars=_int("CHUNK_SIZE_CHARS", 1000, minimum=100),
        chunk_overlap_chars=_int("CHUNK_OVERLAP_CHARS", 200, minimum=0),
        callback_max_attempts=_int("CALLBACK_MAX_ATTEMPTS", 6, minimum=1),
        callback_backoff_seconds=_int("CALLBACK_BACKOFF_SECONDS", 30, minimum=0),
        callback_timeout_seconds=_int("CALLBACK_TIMEOUT_SECONDS", 10, minimum=1),
        callback_user_in_flight=_int("CALLBACK_USER_IN_FLIGHT", 2, minimum=1),
        callback_allowed_hosts=_allowed_hosts("CALLBACK_ALLOWED_HOSTS"),
        callback_secret_grace_hours=_int("CALLBACK_SECRET_GRACE_HOURS", 24, minimum=0),
        remember_days=_int("REMEMBER_DAYS", 14, minimum=1),
        proxy_hops=_int("PROXY_HOPS", 0),
        login_failures_per_minute=_int("LOGIN_FAILURES_PER_MINUTE", 10, minimum=1),
        metrics_token=os.environ.get("METRICS_TOKEN", ""),
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


def docqueue_home(*, create: bool = False) -> Path:
    """Where `up` keeps its data: DOCQUEUE_HOME, else ./.docqueue."""
    home = Path(os.environ.get("DOCQUEUE_HOME") or ".docqueue").resolve()
    if create:
        home.mkdir(parents=True, exist_ok=True)
    return home
