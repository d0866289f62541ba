"""The declarative base, the id range, and the helper the models' check constraints share."""

from __future__ import annotations

from sqlalchemy.orm import DeclarativeBase

from docqueue.statuses import sql_values

#: The largest id a key column holds (they are BIGINTs): a larger number names no row, and Postgres refuses it.
MAX_ID = 2**63 - 1


def sql_in(column: str, values) -> str:
    """A check constraint's `column IN (...)` over `values` (a status enum or tuple)."""
    return f"{column} IN ({sql_values(values)})"


class Base(DeclarativeBase):
    """The declarative base of every model: its `metadata` is the whole schema."""
