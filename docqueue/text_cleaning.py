"""Text as Postgres can store it.

Real text layers carry characters a Postgres `text` column refuses: NUL
(U+0000, seen in a pdfTeX thesis) and lone UTF-16 surrogates (from fonts
with broken Unicode maps), which cannot be encoded as UTF-8.
"""

from __future__ import annotations

import re

_LONE_SURROGATES = re.compile("[\ud800-\udfff]")


def storable_text(text: str) -> str:
    """`text` with NUL removed and lone surrogates replaced by U+FFFD (the replacement character)."""
    return _LONE_SURROGATES.sub("\ufffd", text.replace("\x00", ""))
