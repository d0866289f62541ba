"""Per-user quotas: how much a user may store, and how many pages they may have processed in a UTC day.

Each user has `storage_quota_mb` and `daily_page_quota` (None: the
defaults DEFAULT_STORAGE_QUOTA_MB and DEFAULT_DAILY_PAGE_QUOTA), set by
admins. Storage counts the bytes of the user's uploaded files
(`users.storage_used_bytes`, kept here by the statements that store them);
what their processing adds is bounded per document by its budgets
(`docqueue/budgets.py`).

- An upload over the storage quota is refused whole (413, nothing stored):
  one conditional UPDATE of the user's row inside the upload's transaction,
  after its bytes are stored, adds them only if they fit; the row stays
  locked until the commit, so concurrent uploads cannot both slip under it.
  `docqueue ingest` and folder uploads reject the files that would pass it.
- Pages are counted in by `inspect` (`count_in_pages`) in the transaction
  that records its result: a document whose pages would pass the day's quota
  fails there, for good, saying when the quota resets (it is not held back to
  wait: a waiting document would keep a queue slot's worth of work invisible
  and pile up unbounded; its owner reprocesses it the next day). An upload
  made once the day's quota is used up answers 429 and stores nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.orm import Session

from docqueue.documents import UploadRejected
from docqueue.errors import StageError
from docqueue.models import User
from docqueue.settings import get_settings

MB = 1024 * 1024
_TODAY = "CAST(timezone('UTC', now()) AS date)"


class QuotaExceeded(UploadRejected):
    """An upload refused by one of its owner's quotas; `status` is the HTTP answer (nothing was stored)."""

    status = 413


class StorageQuotaExceeded(QuotaExceeded):
    status = 413


class DailyPageQuotaUsedUp(QuotaExceeded):
    status = 429


class DailyPageQuotaReached(StageError):
    """A document whose pages would pass its owner's daily page quota: fails at `inspect`, not retried."""

    label = "quota reached"


def storage_quota_mb(user: User) -> int:
    """The user's storage quota in MB: their own, else DEFAULT_STORAGE_QUOTA_MB."""
    return user.storage_quota_mb if user.storage_quota_mb is not None else get_settings().default_storage_quota_mb


def daily_page_quota(user: User) -> int:
    """The pages the user may have processed in a UTC day: their own quota, else DEFAULT_DAILY_PAGE_QUOTA."""
    return user.daily_page_quota if user.daily_page_quota is not None else get_settings().default_daily_page_quota


def _mb(size: int) -> str:
    return f"{size / MB:,.1f} MB"


@dataclass(frozen=True)
class Usage:
    """A user's quotas and what they use of them now."""

    storage_quota_mb: int
    storage_used_bytes: int
    daily_page_quota: int
    pages_today: int

    def as_dict(self) -> dict:
        return {
            "storage_quota_mb": self.storage_quota_mb,
            "storage_used_bytes": self.storage_used_bytes,
            "daily_page_quota": self.daily_page_quota,
            "pages_today": self.pages_today,
        }


def usage(session: Session, user: User) -> Usage:
    """`user`'s quotas and use: bytes stored, and pages counted in today (UTC)."""
    stored, pages = session.execute(
        text(
            f"""
            SELECT u.storage_used_bytes,
                   (SELECT coalesce(sum(pages), 0) FROM daily_page_usage WHERE user_id = u.id AND day = {_TODAY})
            FROM users u WHERE u.id = :user
            """
        ),
        {"user": user.id},
    ).one()
    return Usage(storage_quota_mb(user), int(stored), daily_page_quota(user), int(pages))


def pages_today(session: Session, user_id: int) -> int:
    """Pages of the user's documents `inspect` counted in today (UTC)."""
    return session.execute(
        text(f"SELECT coalesce(sum(pages), 0) FROM daily_page_usage WHERE user_id = :user AND day = {_TODAY}"),
        {"user": user_id},
    ).scalar()


def check_pages_left(session: Session, user: User) -> None:
    """DailyPageQuotaUsedUp when `user` has no page left today: an upload then stores nothing."""
    quota, used = daily_page_quota(user), pages_today(session, user.id)
    if used >= quota:
        raise DailyPageQuotaUsedUp(
            f"your daily page quota of {quota:,} pages is used up ({used:,} pages processed today); "
            "it resets at 00:00 UTC. Nothing was stored"
        )


def _storage(session: Session, owner_id: int, lock: str) -> tuple[int, int]:
    quota, stored = session.execute(
        text(f"SELECT storage_quota_mb, storage_used_bytes FROM users WHERE id = :owner {lock}"), {"owner": owner_id}
    ).one()
    quota_mb = quota if quota is not None else get_settings().default_storage_quota_mb
    return quota_mb * MB, int(stored)


def locked_storage(session: Session, owner_id: int) -> tuple[int, int]:
    """(the owner's storage quota in bytes, bytes they store), their user row locked until the transaction
    ends: concurrent uploads and imports of one user check one after another. Add what is stored with
    `add_storage`.

    FOR NO KEY UPDATE, not FOR UPDATE: the documents other transactions of the
    user insert hold KEY SHARE locks on the row (their foreign key), which FOR
    UPDATE would wait for while they wait to update the row: a deadlock.
    """
    return _storage(session, owner_id, "FOR NO KEY UPDATE")


def add_storage(session: Session, owner_id: int, added: int) -> None:
    """Count `added` bytes this transaction stored into the owner's use (checked with `locked_storage` first)."""
    session.execute(
        text("UPDATE users SET storage_used_bytes = storage_used_bytes + :added WHERE id = :owner"),
        {"owner": owner_id, "added": added},
    )


def storage_refusal(quota_bytes: int, stored: int, adding: int) -> str:
    """What to tell someone whose `adding` bytes would take their `stored` bytes past their quota."""
    return f"over your storage quota of {_mb(quota_bytes)}: you store {_mb(stored)} and this is {_mb(adding)} more"


def check_storage(session: Session, owner_id: int, added: int) -> None:
    """Count the `added` bytes this transaction stored into the owner's use if they fit their quota, else
    StorageQuotaExceeded (the caller rolls back: nothing is stored). Call it last before the commit: it locks
    their row until then."""
    fits = session.execute(
        text(
            """
            UPDATE users SET storage_used_bytes = storage_used_bytes + :added
            WHERE id = :owner AND storage_used_bytes + :added <= CAST(coalesce(storage_quota_mb, :default_mb) AS bigint) * :mb
            RETURNING storage_used_bytes
            """
        ),
        {"owner": owner_id, "added": added, "default_mb": get_settings().default_storage_quota_mb, "mb": MB},
    ).scalar()
    if fits is None:
        # Only for the message, so no lock (see `locked_storage`): this transaction is about to roll back.
        quota, stored = _storage(session, owner_id, "")
        raise StorageQuotaExceeded(f"the upload is {storage_refusal(quota, stored, added)}; nothing was stored")


def count_in_pages(session: Session, owner_id: int, pages: int) -> None:
    """Count a document's `pages` into its owner's pages today; DailyPageQuotaReached (nothing counted) if they
    would pass the owner's daily page quota. One statement: the count and the check cannot be raced."""
    counted = session.execute(
        text(
            f"""
            WITH quota AS (
                SELECT coalesce(daily_page_quota, :default_quota) AS pages FROM users WHERE id = :owner
            )
            INSERT INTO daily_page_usage (user_id, day, pages)
            SELECT :owner, {_TODAY}, :pages FROM quota WHERE :pages <= quota.pages
            ON CONFLICT (user_id, day) DO UPDATE SET pages = daily_page_usage.pages + EXCLUDED.pages
                WHERE daily_page_usage.pages + EXCLUDED.pages <= (SELECT pages FROM quota)
            RETURNING pages
            """
        ),
        {"owner": owner_id, "pages": pages, "default_quota": get_settings().default_daily_page_quota},
    ).scalar()
    if counted is None:
        quota = daily_page_quota(session.get(User, owner_id))
        raise DailyPageQuotaReached(
            f"the document's {pages:,} pages would pass your daily page quota of {quota:,} pages "
            f"({pages_today(session, owner_id):,} processed today); the quota resets at 00:00 UTC: reprocess the "
            "document then, or ask an admin for a larger quota"
        )
