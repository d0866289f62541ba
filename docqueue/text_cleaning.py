"""Text as Postgres can store it, and names as a page, a message or a CSV may show them.

Real text layers carry characters a Postgres `text` column refuses: NUL
(U+0000, seen in a pdfTeX thesis) and lone UTF-16 surrogates (from fonts
with broken Unicode maps), which cannot be encoded as UTF-8.

A name someone else chose (a file or folder name, a path in a folder
upload) may carry characters that change how the text around it reads: a
right-to-left override makes `invoice\u202efdp.exe` show as
`invoiceexe.pdf`, a newline starts a fake line in a log or a message.
Every place that shows such a name shows `shown_name` of it.
"""

from __future__ import annotations

import re
import unicodedata

_LONE_SURROGATES = re.compile("[\ud800-\udfff]")

#: Unicode categories removed from names: control, format (bidi overrides, zero-width), surrogate, line separators.
UNSHOWN_CATEGORIES = frozenset(("Cc", "Cf", "Cs", "Zl", "Zp"))


def storable_text(text: str) -> str:
    """`text` with NUL removed and lone surrogates replaced by U+FFFD (the replacement character)."""
    return _LONE_SURROGATES.sub("\ufffd", text.replace("\x00", ""))


def shown_name(name: str) -> str:
    """`name` without control characters, bidirectional overrides and other invisible format characters,
    lone surrogates and line or paragraph separators: what it looks like is what it is."""
    return "".join(char for char in name if unicodedata.category(char) not in UNSHOWN_CATEGORIES)
