"""error trigrams: a trigram index for the jobs list's "error text contains" filter

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-26 09:00:00

The filter (`JobFilter.where_clause`) matches `lower(error_message) LIKE
'%…%'`; without an index that reads the whole queue table (over half a second
at a million rows). A GIN trigram index on the lowered error text of the rows
that have one serves it.

Conditional on purpose: pg_trgm is a contrib extension. Debian's and most
hosted PostgreSQL servers ship it, but the embedded server that `docqueue up`
and the tests may start (the `pgserver` pip package) does not, and a role
that is neither superuser nor allowed to create in the database cannot
install it. Where it cannot be had this migration does nothing, and the
filter's query still works, as a scan.

Alongside the index, statistics on the same expression: the planner ignores
a partial index's expression statistics, and without any it guesses few
matches for every text (100 at a million rows), so for an error shared by
many rows it would read them all through the index and sort them rather than
walk the newest ids until a page is full.
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

# Already installed, or available and this role may install it (superuser, or
# a trusted extension, as pg_trgm is from PostgreSQL 13, and CREATE on the database).
_TRGM_USABLE = """
SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm')
    OR EXISTS (
        SELECT 1 FROM pg_available_extension_versions v
        WHERE v.name = 'pg_trgm'
          AND ((SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
               OR (v.trusted AND has_database_privilege(current_database(), 'CREATE')))
    )
"""


def upgrade():
    bind = op.get_bind()
    if not bind.execute(sa.text(_TRGM_USABLE)).scalar():
        return
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    # Only failed (and retried) rows carry an error, so the index stays small and builds quickly.
    op.execute(
        "CREATE INDEX document_queue_error_trgm_idx ON document_queue "
        "USING gin (lower(error_message) gin_trgm_ops) WHERE error_message IS NOT NULL"
    )
    if bind.execute(sa.text("SELECT current_setting('server_version_num')::int >= 140000")).scalar():
        op.execute("CREATE STATISTICS document_queue_error_lower_stats ON (lower(error_message)) FROM document_queue")
        op.execute("ANALYZE document_queue")


def downgrade():
    # The extension stays: something else may use it by now.
    op.execute("DROP STATISTICS IF EXISTS document_queue_error_lower_stats")
    op.execute("DROP INDEX IF EXISTS document_queue_error_trgm_idx")
