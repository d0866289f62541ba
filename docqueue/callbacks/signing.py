"""Callback signatures, and rotating the secret that keys them.

Every POST carries `X-Docqueue-Signature: t=<unix seconds>,v1=<hex>` where
`<hex>` is the HMAC-SHA256, keyed by the owner's callback secret, of the
bytes `<t>.<body>` (the scheme Stripe uses). The timestamp is signed with
the body, so a receiver that refuses one older than TOLERANCE_SECONDS
cannot be fed a captured delivery again later.

A user may rotate the secret: for CALLBACK_SECRET_GRACE_HOURS afterwards
each POST carries a second `v1=` made with the old secret, so a receiver
can switch to the new one at its own pace (either signature matching is
enough).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import func
from sqlalchemy.orm import Session

from docqueue.accounts.audit import record_audit
from docqueue.models import User

SIGNATURE_HEADER = "X-Docqueue-Signature"
#: How old a signed timestamp a receiver should still accept (documented; receivers enforce it).
TOLERANCE_SECONDS = 300
#: How the API describes the scheme to a user.
SCHEME = "t=<unix seconds>,v1=<hex HMAC-SHA256 of '<t>.<body>' keyed by secret>"


def signature_header(keys: Sequence[str], body: bytes, timestamp: int) -> str:
    """The signature header's value: the timestamp, then one `v1=` per key (the current secret first)."""
    signed = f"{timestamp}.".encode() + body
    return ",".join(
        [f"t={timestamp}"] + [f"v1={hmac.new(key.encode(), signed, hashlib.sha256).hexdigest()}" for key in keys]
    )


def previous_secret_valid_until(user: User) -> datetime | None:
    """Until when the secret `user` rotated away from still signs beside the new one; None when it no longer does."""
    until = user.callback_secret_previous_until
    if user.callback_secret_previous and until and until > datetime.now(UTC):
        return until
    return None


def rotate_secret(session: Session, actor: User | None, user: User, grace_hours: int) -> str:
    """Give `user` a new callback secret and return it; the old one still signs for `grace_hours`.

    Rotating again within the grace period drops the oldest secret: only the
    one just replaced is still honoured.
    """
    new_secret = secrets.token_hex(32)
    user.callback_secret_previous = user.callback_secret if grace_hours else None
    user.callback_secret_previous_until = func.now() + timedelta(hours=grace_hours) if grace_hours else None
    user.callback_secret = new_secret
    record_audit(session, actor, "user.rotate_callback_secret", 1, user.email)
    session.flush()
    return new_secret
