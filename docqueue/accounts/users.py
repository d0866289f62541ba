"""User accounts: creation, password checks and API tokens."""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from docqueue.models import User
from docqueue.settings import get_settings
from docqueue.statuses import ROLES

#: A hash of a password nobody has, in the same method as real ones: a login for an
#: unknown email verifies against it, so it costs what a wrong password for a known one does.
DUMMY_PASSWORD_HASH = generate_password_hash(secrets.token_urlsafe(32))

#: The stored "hash" of an account with no password: no method of werkzeug's has this form, so no
#: password matches it, and creating an API-only account costs no scrypt (about 50 ms of CPU).
NO_PASSWORD = "!none"


class UserExists(ValueError):
    """A user with that email is already registered."""


def hash_token(token: str) -> str:
    """API tokens are stored as SHA-256: they are long and random, so no slow hash is needed."""
    return hashlib.sha256(token.encode()).hexdigest()


def normalize_email(email: str) -> str:
    email = email.strip().lower()
    if "@" not in email or email.startswith("@") or email.endswith("@") or not email.isprintable():
        raise ValueError(f"not an email address: {email!r}")
    return email


def validate_role(role: str) -> str:
    """`role` if it is one of ROLES, else ValueError naming them."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    return role


def create_user(session: Session, email: str, password: str | None = None, *, role: str = "viewer") -> tuple[User, str]:
    """Create a user; return it with its API token, which is shown this once and stored only hashed.

    Without a password the account can use the API but cannot log in to the browser pages.
    """
    email = normalize_email(email)
    validate_role(role)
    if session.scalar(select(User.id).where(User.email == email)) is not None:
        raise UserExists(f"a user with email {email} already exists")
    token = secrets.token_urlsafe(32)
    user = User(
        email=email,
        password_hash=generate_password_hash(password) if password else NO_PASSWORD,
        role=role,
        api_token_hash=hash_token(token),
        ocr_timeout_seconds=get_settings().ocr_timeout_seconds,
    )
    session.add(user)
    session.flush()
    return user, token


def user_for_token(session: Session, token: str) -> User | None:
    """The enabled user whose API token this is, else None."""
    return session.scalar(select(User).where(User.api_token_hash == hash_token(token), User.disabled_at.is_(None)))


def user_for_login(session: Session, email: str, password: str) -> User | None:
    """The enabled user if the email and password match, else None.

    Every answer costs one password hash check, so the time taken does not
    tell whether the email has an account (or a disabled one).
    """
    email = email.strip().lower()
    # Postgres text holds no NUL: such an email names no account (rather than failing the query).
    user = None if "\x00" in email else session.scalar(select(User).where(User.email == email))
    usable = user is not None and user.is_active and user.password_hash != NO_PASSWORD
    # An account with no password is checked against the dummy too, so its answer takes as long.
    password_hash = user.password_hash if usable else DUMMY_PASSWORD_HASH
    if check_password_hash(password_hash, password) and password_hash is not DUMMY_PASSWORD_HASH:
        return user
    return None


def user_for_session(session: Session, session_user_id: str) -> User | None:
    """The enabled user a login session or remember cookie names ("<id>:<session version>"), else None.

    An old id form, a bumped version or a disabled account all answer None: that session is over.
    """
    user_id, _, version = session_user_id.partition(":")
    # Digits only, and few enough for a bigint: anything else is a forged or foreign cookie.
    if not (user_id.isdigit() and version.isdigit() and len(user_id) < 19 and len(version) < 10):
        return None
    return session.scalar(
        select(User).where(User.id == int(user_id), User.session_version == int(version), User.disabled_at.is_(None))
    )


def end_all_sessions(session: Session, user: User) -> None:
    """Void every login session and remember cookie of `user` (logout everywhere, password change)."""
    user.session_version = User.session_version + 1
    session.flush()
    session.refresh(user)


def count_users(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(User))
