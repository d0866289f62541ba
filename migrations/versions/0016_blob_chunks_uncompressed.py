"""blob chunks uncompressed: file bytes are stored as they come, without pglz

Uploads are PDFs and images whose streams are compressed already, so
Postgres's pglz found nothing to gain and spent ~14 ms of server CPU per
MiB trying (measured: a 1 MB upload's INSERT cost 20 ms of backend CPU
with it, 6 ms without). EXTERNAL keeps chunks out of line, uncompressed.
Only rows written from now on are affected.

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-26 11:30:00

"""

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade():
    op.execute("ALTER TABLE blob_chunks ALTER COLUMN data SET STORAGE EXTERNAL")


def downgrade():
    op.execute("ALTER TABLE blob_chunks ALTER COLUMN data SET STORAGE EXTENDED")
