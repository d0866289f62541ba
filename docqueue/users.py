"""User accounts: creation, password checks and API tokens."""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from docqueue.models import User
from docqueue.settings import get_settings


class UserExists(ValueError):
    """A user with that email is already registered."""


class UserNotFound(LookupError):
    """No user has that email."""


def hash_token(token: str) -> str:
    """API tokens are stored as SHA-256: they are long and random, so no slow hash is needed."""
    return hashlib.sha256(token.encode()).hexdigest()


def normalize_email(email: str) -> str:
    email = email.strip().lower()
    if "@" not in email or email.startswith("@") or email.endswith("@"):
        raise ValueError(f"not an email address: {email!r}")
    return email


def create_user(session: Session, email: str, password: str | None = None, *, is_admin: bool = False) -> tuple[User, str]:
    """Create a user; return it with its API token, which is shown this once and stored only hashed.

    Without a password the account can use the API but cannot log in to the browser pages.
    """
    email = normalize_email(email)
    if session.scalar(select(User.id).where(User.email == email)) is not None:
        raise UserExists(f"a user with email {email} already exists")
    token = secrets.token_urlsafe(32)
    user = User(
        email=email,
        # An unguessable hash nobody knows the password of: no browser login until one is set.
        password_hash=generate_password_hash(password or secrets.token_urlsafe(32)),
        is_admin=is_admin,
        api_token_hash=hash_token(token),
        ocr_timeout_seconds=get_settings().ocr_timeout_seconds,
    )
    session.add(user)
    session.flush()
    return user, token


def user_by_email(session: Session, email: str) -> User:
    """The user with `email` (any case); UserNotFound if there is none."""
    user = session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None:
        raise UserNotFound(f"no user has the email {email.strip()}")
    return user


def set_password(session: Session, email: str, password: str) -> User:
    """Give the user a new browser password; their sessions and API token stay valid."""
    if not password or not password.strip():
        raise ValueError("the password must not be empty")
    user = user_by_email(session, email)
    user.password_hash = generate_password_hash(password)
    session.flush()
    return user


def rotate_token(session: Session, email: str) -> tuple[User, str]:
    """Replace the user's API token: the old one stops working at commit. Returns the new token, shown once."""
    user = user_by_email(session, email)
    token = secrets.token_urlsafe(32)
    user.api_token_hash = hash_token(token)
    session.flush()
    return user, token


def list_users(session: Session) -> list[User]:
    """Every user, oldest first."""
    return list(session.scalars(select(User).order_by(User.id)))


def user_for_token(session: Session, token: str) -> User | None:
    return session.scalar(select(User).where(User.api_token_hash == hash_token(token)))


def user_for_login(session: Session, email: str, password: str) -> User | None:
    """The user if the email and password match, else None."""
    user = session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is not None and check_password_hash(user.password_hash, password):
        return user
    return None


def count_users(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(User))
