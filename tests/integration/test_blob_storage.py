"""How Postgres keeps file bytes."""

from __future__ import annotations

import sqlalchemy as sa


def test_file_bytes_are_stored_without_compression(session):
    # Uploads are compressed already (PDF streams, JPEG, PNG): pglz spent ~14 ms of server CPU per MiB finding so.
    storage = session.execute(
        sa.text("SELECT attstorage FROM pg_attribute WHERE attrelid = 'blob_chunks'::regclass AND attname = 'data'")
    ).scalar()
    assert storage == "e"  # EXTERNAL: out of line, uncompressed
