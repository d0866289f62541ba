"""Embedding vectors in Postgres: pgvector's `vector` where the extension exists, else `real[]`.

Migration 0006 picks the column type once; this module is the only code that
reads or writes `embedding` columns, and it asks the database which type it
got, so the same code runs on either.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

#: Tables with an `embedding` column -> the column naming a row.
_KEYS = {"document_chunks": "seq", "document_images": "id"}

_types: dict[str, str] = {}


def embedding_type(session: Session) -> str:
    """`vector` or `real[]`: how this database stores embeddings (asked once per process)."""
    if "type" not in _types:
        _types["type"] = session.execute(
            text(
                "SELECT format_type(atttypid, NULL) FROM pg_attribute "
                "WHERE attrelid = 'document_chunks'::regclass AND attname = 'embedding'"
            )
        ).scalar_one()
    return _types["type"]


def _literal(vector: list[float], pgvector: bool) -> str:
    body = ",".join(repr(float(x)) for x in vector)
    return f"[{body}]" if pgvector else f"{{{body}}}"


def store_embeddings(
    session: Session, table: str, job_id: int, keyed: list[tuple[int, list[float]]], model: str
) -> None:
    """Set the embeddings of run `job_id`'s rows `keyed` [(key, vector)] of `table`, in one statement."""
    key = _KEYS[table]
    column_type = embedding_type(session)
    pgvector = column_type == "vector"
    session.execute(
        text(
            f"""
            UPDATE {table} t SET embedding = CAST(v.vec AS {"vector" if pgvector else "real[]"}), embedding_model = :model
            FROM unnest(CAST(:keys AS bigint[]), CAST(:vecs AS text[])) AS v(key, vec)
            WHERE t.job_id = :job_id AND t.{key} = v.key
            """
        ),
        {
            "job_id": job_id,
            "model": model,
            "keys": [k for k, _ in keyed],
            "vecs": [_literal(vector, pgvector) for _, vector in keyed],
        },
    )


def embedding_dimensions(session: Session, table: str, job_id: int) -> int | None:
    """The length of run `job_id`'s stored vectors in `table`, or None if none is stored."""
    length = "vector_dims(embedding)" if embedding_type(session) == "vector" else "cardinality(embedding)"
    return session.execute(
        text(f"SELECT {length} FROM {table} WHERE job_id = :id AND embedding IS NOT NULL LIMIT 1"),
        {"id": job_id},
    ).scalar()
