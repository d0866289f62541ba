"""Accounts, and the audit log of what they did."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Identity,
    Integer,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from docqueue.models.base import Base, sql_in
from docqueue.statuses import ROLES


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), server_default=text("'viewer'"))
    #: Set when an admin disables the account: no login, no session, no API token works.
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: Part of the login session's user id: bumping it ends every session and remember cookie.
    session_version: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    # SHA-256 of the API token: a leaked table does not leak usable tokens.
    api_token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    concurrent_ocr_jobs: Mapped[int] = mapped_column(Integer, server_default=text("2"))
    ocr_timeout_seconds: Mapped[int] = mapped_column(Integer, server_default=text("300"))
    enable_background_ocr: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    # Where to POST when a document ends, unless its upload named a URL; signed with `callback_secret`.
    callback_url: Mapped[str | None] = mapped_column(String(2048))
    callback_secret: Mapped[str] = mapped_column(
        String(64), server_default=text("replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '')")
    )
    # Quotas an admin may set; None: the setting's default (DEFAULT_STORAGE_QUOTA_MB, DEFAULT_DAILY_PAGE_QUOTA).
    storage_quota_mb: Mapped[int | None] = mapped_column(Integer)
    # Bytes of the user's uploaded files, kept by the statements that store them (`docqueue/quotas.py`): read in
    # O(1) at each upload, where summing their documents cost 40-90 ms for 100,000 of them. Documents are
    # never deleted but with their owner; code that ever deletes one must take its bytes off here.
    storage_used_bytes: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    daily_page_quota: Mapped[int | None] = mapped_column(Integer)
    # The secret `callback_secret` replaced, still signing beside it until `callback_secret_previous_until`.
    callback_secret_previous: Mapped[str | None] = mapped_column(String(64))
    callback_secret_previous_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    # The attributes a login session needs (Flask-Login's protocol), without importing Flask here.
    is_authenticated = True
    is_anonymous = False

    @property
    def is_active(self) -> bool:
        return self.disabled_at is None

    def get_id(self) -> str:
        """The session's user id: id and session version, so a bumped version voids old sessions and cookies."""
        return f"{self.id}:{self.session_version}"

    def has_role(self, role: str) -> bool:
        """True if this user's role is `role` or a more powerful one."""
        return ROLES.index(self.role) >= ROLES.index(role)

    __table_args__ = (
        CheckConstraint(sql_in("role", ROLES), name="users_role_valid"),
        CheckConstraint("concurrent_ocr_jobs >= 0", name="users_concurrent_ocr_jobs_nonnegative"),
        CheckConstraint("ocr_timeout_seconds > 0", name="users_ocr_timeout_positive"),
        CheckConstraint("storage_quota_mb >= 0", name="users_storage_quota_nonnegative"),
        CheckConstraint("daily_page_quota >= 0", name="users_daily_page_quota_nonnegative"),
    )


class DailyPageUsage(Base):
    """Pages of a user's documents that `inspect` counted in on one UTC day, against their `daily_page_quota`."""

    __tablename__ = "daily_page_usage"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    pages: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))


class AuditRecord(Base):
    """Who did what to the queue or to an account, to how many, and when."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    #: The actor's email (or "cli") as it was then: the record outlives the account.
    actor: Mapped[str] = mapped_column(String(320))
    action: Mapped[str] = mapped_column(String(64))
    count: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    detail: Mapped[str] = mapped_column(Text, server_default=text("''"))
