"""Counts in words for messages people read: "1 file", "3 files", never "file(s)"."""

from __future__ import annotations


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """`count` and `noun`, singular for exactly one: `counted(1, "job")` is "1 job", `counted(0, "day")` "0 days"."""
    return f"{count} {noun if count == 1 else plural or noun + 's'}"
