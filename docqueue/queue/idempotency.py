"""Idempotency keys of `POST /api/documents`: a retried upload gets the first answer, never a second document.

Rules (as Stripe's API keeps them):

- A key belongs to one user and holds for KEY_LIFETIME_HOURS; after that
  the same key starts afresh.
- The first request claims its key with one INSERT in the upload's own
  transaction. The answer is recorded in that transaction too, so either the
  document and its answer are both stored, or neither is and the key stays
  free for the retry.
- A second request with the key waits on that row while the first is
  still running (at most the session's `lock_timeout`: then "in progress"),
  and then gets the stored answer.
- The same key with a different request (other bytes, name, type or
  priority) is refused: it is a client bug, not a retry.

Like the queue service, these functions run in the caller's transaction and never commit.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import BinaryIO

import sqlalchemy.exc
from sqlalchemy import text
from sqlalchemy.orm import Session

KEY_LIFETIME_HOURS = 24
MAX_KEY_CHARS = 255
#: Postgres's SQLSTATE for lock_not_available: `lock_timeout` ran out.
_LOCK_NOT_AVAILABLE = "55P03"


class IdempotencyKeyInvalid(ValueError):
    """The header's value cannot be a key; the message says why."""


class IdempotencyConflict(Exception):
    """The key was used within its lifetime for a different request."""


class IdempotencyInProgress(Exception):
    """Another request with this key is still being stored."""


@dataclass(frozen=True)
class StoredAnswer:
    status: int
    body: dict


def validate_key(raw: str) -> str:
    """The key as sent; IdempotencyKeyInvalid unless it is 1-255 printable ASCII characters."""
    if not raw or len(raw) > MAX_KEY_CHARS or not all(" " <= char <= "~" for char in raw):
        raise IdempotencyKeyInvalid(f"Idempotency-Key must be 1 to {MAX_KEY_CHARS} printable ASCII characters")
    return raw


def request_fingerprint(fields: dict[str, str | None], stream: BinaryIO) -> str:
    """SHA-256 over a request's fields and file bytes; leaves `stream` at its start for storing."""
    digest = hashlib.sha256(json.dumps(fields, sort_keys=True).encode())
    while chunk := stream.read(1024 * 1024):
        digest.update(chunk)
    stream.seek(0)
    return digest.hexdigest()


# Takes the key, or takes it over once it is older than its lifetime; matches nothing while a live one exists.
_CLAIM = f"""
    INSERT INTO idempotency_keys (user_id, key, request_sha256) VALUES (:user_id, :key, :fingerprint)
    ON CONFLICT (user_id, key) DO UPDATE SET
        request_sha256 = EXCLUDED.request_sha256, document_id = NULL,
        response_status = NULL, response_body = NULL, created_at = now()
    WHERE idempotency_keys.created_at < now() - interval '{KEY_LIFETIME_HOURS} hours'
    RETURNING 1
"""


def claim_key(session: Session, user_id: int, key: str, fingerprint: str) -> StoredAnswer | None:
    """None when this request now owns the key (store, then `record_answer`); else the answer to give again.

    Raises IdempotencyConflict for a different request under a live key and
    IdempotencyInProgress when the first request holds the key too long.
    """
    try:
        with session.begin_nested():
            claimed = session.execute(
                text(_CLAIM), {"user_id": user_id, "key": key, "fingerprint": fingerprint}
            ).first()
    except sqlalchemy.exc.OperationalError as error:
        if getattr(error.orig, "sqlstate", None) == _LOCK_NOT_AVAILABLE:
            raise IdempotencyInProgress("a request with this Idempotency-Key is still being processed") from None
        raise
    if claimed is not None:
        return None
    row = session.execute(
        text(
            "SELECT request_sha256, response_status, response_body FROM idempotency_keys "
            "WHERE user_id = :user_id AND key = :key"
        ),
        {"user_id": user_id, "key": key},
    ).one()
    if row.request_sha256 != fingerprint:
        raise IdempotencyConflict(
            f"this Idempotency-Key was used in the last {KEY_LIFETIME_HOURS} hours for a different request"
        )
    return StoredAnswer(status=row.response_status, body=row.response_body)


def record_answer(session: Session, user_id: int, key: str, document_id: int, answer: StoredAnswer) -> None:
    """Keep the answer given under the key, in the transaction that stored the document."""
    session.execute(
        text(
            "UPDATE idempotency_keys SET document_id = :document_id, response_status = :status, "
            "response_body = CAST(:body AS jsonb) WHERE user_id = :user_id AND key = :key"
        ),
        {
            "user_id": user_id,
            "key": key,
            "document_id": document_id,
            "status": answer.status,
            "body": json.dumps(answer.body),
        },
    )


def prune_expired_keys(session: Session, batch: int) -> int:
    """Delete up to `batch` keys past their lifetime (the clock calls this); return how many."""
    # Through the created_at index, oldest first, a bounded batch: never a long-held lock on a busy table.
    result = session.execute(
        text(
            f"""
            DELETE FROM idempotency_keys WHERE (user_id, key) IN (
                SELECT user_id, key FROM idempotency_keys
                WHERE created_at < now() - interval '{KEY_LIFETIME_HOURS} hours'
                ORDER BY created_at LIMIT :batch
                FOR UPDATE SKIP LOCKED)
            """
        ),
        {"batch": batch},
    )
    return result.rowcount
