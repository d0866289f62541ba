"""Every setting docqueue reads, in one place, from the environment.

docs/operating.md's settings table documents each field below; a test keeps the two in step, reading the
variables' names and defaults from this module (how each is parsed and checked: `setting_readers`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from docqueue.setting_readers import (
    SettingsError,
    normalize_database_url,
    read_allowed_hosts,
    read_choice,
    read_int,
    read_languages,
    read_machine_name,
    read_worker_connections,
    redis_url_with_tls,
)


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
    small_document_pass_seconds: int
    worker_chain_seconds: int
    jobs_per_message: int
    worker_threads: int
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
    worker_threads = read_int("WORKER_THREADS", 4, minimum=1)
    return Settings(
        database_url=normalize_database_url(database_url) if database_url else "",
        database_direct_url=normalize_database_url(direct_url) if direct_url else "",
        database_pooler=read_choice("DATABASE_POOLER", ("", "transaction")),
        redis_url=redis_url_with_tls(
            os.environ.get("REDIS_URL", ""),
            read_choice("REDIS_TLS_CERT_REQS", ("", "none", "optional", "required")),
            os.environ.get("REDIS_TLS_CA_CERTS", ""),
        ),
        redis_namespace=os.environ.get("REDIS_NAMESPACE", "dramatiq"),
        machine_name=read_machine_name("MACHINE_NAME"),
        secret_key=os.environ.get("SECRET_KEY", ""),
        sentry_dsn=os.environ.get("SENTRY_DSN", ""),
        ocr_concurrent_jobs=read_int("OCR_CONCURRENT_JOBS", 4, minimum=1),
        bulk_reserved_slots=read_int("BULK_RESERVED_SLOTS", 1, minimum=0),
        ocr_timeout_seconds=read_int("OCR_TIMEOUT_SECONDS", 300, minimum=1),
        queue_batch_size=read_int("QUEUE_BATCH_SIZE", 1000, minimum=1),
        max_concurrent_io=read_int("MAX_CONCURRENT_IO", 50, minimum=1),
        max_upload_bytes=read_int("MAX_UPLOAD_MB", 200, minimum=1) * 1024 * 1024,
        max_attempts=read_int("MAX_ATTEMPTS", 3, minimum=1),
        heartbeat_interval_seconds=read_int("HEARTBEAT_INTERVAL_SECONDS", 30, minimum=1),
        heartbeat_timeout_seconds=read_int("HEARTBEAT_TIMEOUT_SECONDS", 120, minimum=2),
        no_worker_alert_seconds=read_int("NO_WORKER_ALERT_SECONDS", 300, minimum=1),
        redispatch_after_seconds=read_int("REDISPATCH_AFTER_SECONDS", 120, minimum=1),
        dispatch_interval_seconds=read_int("DISPATCH_INTERVAL_SECONDS", 5, minimum=1),
        retry_backoff_seconds=read_int("RETRY_BACKOFF_SECONDS", 15, minimum=0),
        pdf_worker_processes=read_int("PDF_WORKER_PROCESSES", os.cpu_count() or 1, minimum=1),
        # A PDF process needs ~560 MB of address space just to have PyMuPDF imported.
        pdf_process_memory_mb=read_int("PDF_PROCESS_MEMORY_MB", 1024, minimum=768),
        max_page_text_chars=read_int("MAX_PAGE_TEXT_CHARS", 1_000_000, minimum=1),
        # Pillow's default decompression-bomb limit.
        max_image_pixels=read_int("MAX_IMAGE_PIXELS", 89_478_485, minimum=1),
        # A real page holds a few thousand characters: 5,000 pages of 4,000 is 20 M, and 25,000 chunks of 1,000
        # with their overlap; the AI budget covers their embedding requests (10 a request) and a few hundred more.
        # A real archive holds 10,000-page documents (the hostile-file suite completes one): refuse only beyond.
        max_document_pages=read_int("MAX_DOCUMENT_PAGES", 10000, minimum=1),
        max_document_text_chars=read_int("MAX_DOCUMENT_TEXT_CHARS", 20_000_000, minimum=1),
        max_document_chunks=read_int("MAX_DOCUMENT_CHUNKS", 25_000, minimum=1),
        max_ai_calls_per_document=read_int("MAX_AI_CALLS_PER_DOCUMENT", 3000, minimum=1),
        min_ai_image_side=read_int("MIN_AI_IMAGE_SIDE", 32, minimum=1),
        default_storage_quota_mb=read_int("DEFAULT_STORAGE_QUOTA_MB", 10_240, minimum=0),
        default_daily_page_quota=read_int("DEFAULT_DAILY_PAGE_QUOTA", 10_000, minimum=0),
        lost_message_after_seconds=read_int("LOST_MESSAGE_AFTER_SECONDS", 15, minimum=1),
        db_lock_timeout_ms=read_int("DB_LOCK_TIMEOUT_MS", 10_000, minimum=0),
        db_idle_in_transaction_timeout_seconds=read_int("DB_IDLE_IN_TRANSACTION_TIMEOUT_SECONDS", 60, minimum=0),
        db_web_connections=read_int("DB_WEB_CONNECTIONS", 5, minimum=1),
        db_worker_connections=read_worker_connections("DB_WORKER_CONNECTIONS", worker_threads),
        db_pdf_process_connections=read_int("DB_PDF_PROCESS_CONNECTIONS", 2, minimum=2),
        db_clock_connections=read_int("DB_CLOCK_CONNECTIONS", 2, minimum=2),
        db_ingest_connections=read_int("DB_INGEST_CONNECTIONS", 3, minimum=2),
        db_pool_timeout_seconds=read_int("DB_POOL_TIMEOUT_SECONDS", 30, minimum=1),
        web_header_timeout_seconds=read_int("WEB_HEADER_TIMEOUT_SECONDS", 10, minimum=1),
        web_body_timeout_seconds=read_int("WEB_BODY_TIMEOUT_SECONDS", 30, minimum=1),
        # Empty: gunicorn's own default (~/.gunicorn/gunicorn.ctl). `docqueue up` keeps it under DOCQUEUE_HOME.
        web_control_socket=os.environ.get("WEB_CONTROL_SOCKET", ""),
        ocr_languages=read_languages("OCR_LANGUAGES", "eng"),
        # Where Debian's tesseract-ocr-<lang> packages put their models.
        tessdata_prefix=os.environ.get("TESSDATA_PREFIX") or "/usr/share/tesseract-ocr/5/tessdata",
        ocr_dpi=read_int("OCR_DPI", 300, minimum=72),
        ocr_range_pages=read_int("OCR_RANGE_PAGES", 8, minimum=1),
        # A real scan's page takes 0.3-9 s (one thread, orientation included): 30 s a page is far past any of them.
        ocr_seconds_per_page=read_int("OCR_SECONDS_PER_PAGE", 30, minimum=1),
        # Real files nest forms a few levels deep; a bomb draws the next form several times, dozens deep.
        max_content_nesting=read_int("MAX_CONTENT_NESTING", 12, minimum=1),
        # ~4 s of MuPDF's text extraction here; the densest real drawings run a few hundred thousand.
        max_content_operators=read_int("MAX_CONTENT_OPERATORS", 5_000_000, minimum=0),
        embeddings_provider=read_choice("EMBEDDINGS_PROVIDER", ("", "openai", "local")),
        embeddings_base_url=os.environ.get("EMBEDDINGS_BASE_URL", "").rstrip("/"),
        embeddings_api_key=os.environ.get("EMBEDDINGS_API_KEY", ""),
        embeddings_model=os.environ.get("EMBEDDINGS_MODEL", "text-embedding-3-small"),
        embeddings_image_model=os.environ.get("EMBEDDINGS_IMAGE_MODEL", ""),
        embeddings_batch_size=read_int("EMBEDDINGS_BATCH_SIZE", 10, minimum=1),
        chat_base_url=os.environ.get("CHAT_BASE_URL", "").rstrip("/"),
        chat_api_key=os.environ.get("CHAT_API_KEY", ""),
        chat_model=os.environ.get("CHAT_MODEL", "gpt-4o-mini"),
        chat_vision_model=os.environ.get("CHAT_VISION_MODEL", ""),
        ai_timeout_seconds=read_int("AI_TIMEOUT_SECONDS", 60, minimum=1),
        ai_max_tries=read_int("AI_MAX_TRIES", 4, minimum=1),
        ai_retry_backoff_seconds=read_int("AI_RETRY_BACKOFF_MS", 500) / 1000,
        ai_max_retry_after_seconds=read_int("AI_MAX_RETRY_AFTER_SECONDS", 60),
        breaker_fail_max=read_int("BREAKER_FAIL_MAX", 5, minimum=1),
        breaker_reset_seconds=read_int("BREAKER_RESET_SECONDS", 60, minimum=1),
        io_lane_threads=read_int("IO_LANE_THREADS", 2, minimum=1),
        io_lane_requeue_delay_ms=read_int("IO_LANE_REQUEUE_DELAY_MS", 1000, minimum=1),
        image_pages_per_batch=read_int("IMAGE_PAGES_PER_BATCH", 2, minimum=1),
        small_document_max_bytes=read_int("SMALL_DOCUMENT_MAX_BYTES", 4 * 1024 * 1024),
        small_document_max_pages=read_int("SMALL_DOCUMENT_MAX_PAGES", 50, minimum=1),
        small_document_pass_seconds=read_int("SMALL_DOCUMENT_PASS_SECONDS", 10, minimum=1),
        worker_chain_seconds=read_int("WORKER_CHAIN_SECONDS", 60),
        jobs_per_message=read_int("JOBS_PER_MESSAGE", 8, minimum=1),
        worker_threads=worker_threads,
        rows_per_statement=read_int("ROWS_PER_STATEMENT", 1000, minimum=1),
        chunk_size_chars=read_int("CHUNK_SIZE_CHARS", 1000, minimum=100),
        chunk_overlap_chars=read_int("CHUNK_OVERLAP_CHARS", 200, minimum=0),
        callback_max_attempts=read_int("CALLBACK_MAX_ATTEMPTS", 6, minimum=1),
        callback_backoff_seconds=read_int("CALLBACK_BACKOFF_SECONDS", 30, minimum=0),
        callback_timeout_seconds=read_int("CALLBACK_TIMEOUT_SECONDS", 10, minimum=1),
        callback_user_in_flight=read_int("CALLBACK_USER_IN_FLIGHT", 2, minimum=1),
        callback_allowed_hosts=read_allowed_hosts("CALLBACK_ALLOWED_HOSTS"),
        callback_secret_grace_hours=read_int("CALLBACK_SECRET_GRACE_HOURS", 24, minimum=0),
        remember_days=read_int("REMEMBER_DAYS", 14, minimum=1),
        proxy_hops=read_int("PROXY_HOPS", 0),
        login_failures_per_minute=read_int("LOGIN_FAILURES_PER_MINUTE", 10, minimum=1),
        metrics_token=os.environ.get("METRICS_TOKEN", ""),
        completed_retention_days=read_int("COMPLETED_RETENTION_DAYS", 7, minimum=1),
        cleanup_interval_seconds=read_int("CLEANUP_INTERVAL_SECONDS", 24 * 60 * 60, minimum=1),
        discovery_time_limit_seconds=read_int("DISCOVERY_TIME_LIMIT_SECONDS", 300, minimum=1),
        chunking_time_limit_seconds=read_int("CHUNKING_TIME_LIMIT_SECONDS", 180, minimum=1),
        image_time_limit_seconds=read_int("IMAGE_TIME_LIMIT_SECONDS", 600, minimum=1),
        embedding_time_limit_seconds=read_int("EMBEDDING_TIME_LIMIT_SECONDS", 1200, minimum=1),
        time_limit_pages_per_step=read_int("TIME_LIMIT_PAGES_PER_STEP", 200, minimum=1),
        time_limit_mb_per_step=read_int("TIME_LIMIT_MB_PER_STEP", 50, minimum=1),
        time_limit_max_factor=read_int("TIME_LIMIT_MAX_FACTOR", 10, minimum=1),
        memory_pause_percent=read_int("MEMORY_PAUSE_PERCENT", 80, minimum=1),
        worker_max_messages=read_int("WORKER_MAX_MESSAGES", 0),
        worker_max_rss_mb=read_int("WORKER_MAX_RSS_MB", 0),
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
