"""Managing accounts: what an admin does to users, on the web and with `docqueue user ...`.

Each command changes one user in the caller's transaction and writes an
audit record naming the actor (None: the command line).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.security import generate_password_hash

from docqueue.accounts.audit import record_audit
from docqueue.accounts.users import create_user, end_all_sessions, hash_token, normalize_email, validate_role
from docqueue.models import User


class UnknownUser(LookupError):
    """No user has that email or id."""


#: A quota set to this goes back to the setting's default (DEFAULT_STORAGE_QUOTA_MB, DEFAULT_DAILY_PAGE_QUOTA).
USE_DEFAULT = -1
#: Largest quota an admin may give (an `integer` column): 2 PB of storage, 2 billion pages a day.
MAX_QUOTA = 2_000_000_000
QUOTAS = ("storage_quota_mb", "daily_page_quota")


@dataclass(frozen=True)
class UserSettings:
    """The per-user settings an admin may change; None leaves one as it is, USE_DEFAULT resets a quota."""

    concurrent_ocr_jobs: int | None = None
    ocr_timeout_seconds: int | None = None
    enable_background_ocr: bool | None = None
    storage_quota_mb: int | None = None
    daily_page_quota: int | None = None

    def validate(self) -> None:
        if self.concurrent_ocr_jobs is not None and not 0 <= self.concurrent_ocr_jobs <= 1000:
            raise ValueError("concurrent_ocr_jobs must be a whole number from 0 to 1000")
        if self.ocr_timeout_seconds is not None and not 1 <= self.ocr_timeout_seconds <= 86400:
            raise ValueError("ocr_timeout_seconds must be a whole number from 1 to 86400")
        for name in QUOTAS:
            value = getattr(self, name)
            if value is not None and value != USE_DEFAULT and not 0 <= value <= MAX_QUOTA:
                raise ValueError(f"{name} must be a whole number from 0 to {MAX_QUOTA:,}, or the default")


def find_user(session: Session, email_or_id: str | int) -> User:
    """The user with this email (any case) or id; UnknownUser if none."""
    if isinstance(email_or_id, int) or str(email_or_id).isdigit():
        user = session.get(User, int(email_or_id)) if len(str(email_or_id)) < 19 else None
    else:
        user = session.scalar(select(User).where(User.email == str(email_or_id).strip().lower()))
    if user is None:
        known_by = "id" if str(email_or_id).isdigit() else "email"
        raise UnknownUser(f"no user has the {known_by} {str(email_or_id).strip()}")
    return user


def list_users(session: Session) -> list[User]:
    """Every account, oldest first."""
    return list(session.scalars(select(User).order_by(User.id)))


def add_user(session: Session, actor: User | None, email: str, password: str | None, role: str) -> tuple[User, str]:
    """Create an account; return it with its API token (shown once)."""
    user, token = create_user(session, normalize_email(email), password or None, role=role)
    record_audit(session, actor, "user.create", 1, f"{user.email} as {role}")
    return user, token


def set_role(session: Session, actor: User | None, user: User, role: str) -> None:
    """Give `user` a role; refuses to leave the system without an enabled admin."""
    validate_role(role)
    if user.role == "admin" and role != "admin":
        _keep_an_admin(session, user)
    user.role = role
    record_audit(session, actor, "user.role", 1, f"{user.email} is now {role}")


def set_disabled(session: Session, actor: User | None, user: User, disabled: bool) -> None:
    """Disable (no login, no session, no token) or enable an account."""
    if disabled and user.disabled_at is None:
        if user.role == "admin":
            _keep_an_admin(session, user)
        user.disabled_at = func.now()
        end_all_sessions(session, user)
    elif not disabled:
        user.disabled_at = None
    record_audit(session, actor, "user.disable" if disabled else "user.enable", 1, user.email)
    session.flush()


def set_password(session: Session, actor: User | None, user: User, password: str) -> None:
    """Give `user` a new password and end every session they have (remember-me cookies included)."""
    if len(password) < 8:
        raise ValueError("a password needs at least 8 characters")
    user.password_hash = generate_password_hash(password)
    end_all_sessions(session, user)
    record_audit(session, actor, "user.password", 1, user.email)


def reset_token(session: Session, actor: User | None, user: User) -> str:
    """Give `user` a new API token (the old one stops working); return it, shown this once."""
    token = secrets.token_urlsafe(32)
    user.api_token_hash = hash_token(token)
    record_audit(session, actor, "user.reset_token", 1, user.email)
    session.flush()
    return token


def update_settings(session: Session, actor: User | None, user: User, settings: UserSettings) -> None:
    """Change `user`'s per-user settings; ValueError (nothing changed) for an out-of-range value."""
    settings.validate()
    changed = []
    for name in ("concurrent_ocr_jobs", "ocr_timeout_seconds", "enable_background_ocr", *QUOTAS):
        value = getattr(settings, name)
        if value is not None:
            # A quota reset to the default is stored as NULL: it follows the setting from then on.
            setattr(user, name, None if name in QUOTAS and value == USE_DEFAULT else value)
            changed.append(f"{name}={'default' if name in QUOTAS and value == USE_DEFAULT else value}")
    record_audit(session, actor, "user.settings", 1, f"{user.email}: {', '.join(changed) or 'no change'}")
    session.flush()


def _keep_an_admin(session: Session, user: User) -> None:
    others = session.scalar(
        select(func.count())
        .select_from(User)
        .where(User.role == "admin", User.disabled_at.is_(None), User.id != user.id)
    )
    if not others:
        raise ValueError(f"{user.email} is the last enabled admin: make another admin first")
