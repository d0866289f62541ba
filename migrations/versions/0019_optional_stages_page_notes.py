"""optional stages and page notes: a completed run may retry one failed optional stage; a page says why it has no text

An optional stage (enrichment and the others after the text is stored) that
fails for good no longer fails its document: the run completes with that
stage marked failed. Its owner may retry that stage alone, in the same run
(its outputs are keyed by the run, so everything else is kept): the queue
item goes `completed → pending` at that stage with operation `stage_retry`.

A page whose contents cannot be read (a broken content stream) costs that
page, not the document: it is stored without text and with a `note` saying
why, and OCR does not try it again.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07 17:10:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

# The edges 0007 allows (its BASE_EDGES and CANCEL_EDGES), repeated: a migration must not change with later code.
EDGES = [
    "('pending', 'queued')",
    "('queued', 'processing')",
    "('processing', 'queued')",
    "('processing', 'pending')",
    "('processing', 'completed')",
    "('processing', 'failed')",
    "('failed', 'pending')",
    "('pending', 'cancelled')",
    "('queued', 'cancelled')",
    "('processing', 'cancelled')",
    "('cancelled', 'pending')",
]
STAGE_RETRY_EDGE = "('completed', 'pending')"  # one failed optional stage of a completed run, retried by its owner


def guard_function(edges: list[str]) -> str:
    listed = ",\n        ".join(edges)
    return f"""
CREATE OR REPLACE FUNCTION document_queue_guard_transition() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status IS DISTINCT FROM OLD.status AND (OLD.status, NEW.status) NOT IN ({listed}
    ) THEN
        RAISE EXCEPTION 'illegal queue transition % -> % for job %', OLD.status, NEW.status, OLD.id
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$
"""


def upgrade():
    op.add_column("document_pages", sa.Column("note", sa.Text(), nullable=True))
    op.execute(guard_function(EDGES + [STAGE_RETRY_EDGE]))
    op.drop_constraint("document_queue_operation_valid", "document_queue", type_="check")
    op.create_check_constraint(
        "document_queue_operation_valid",
        "document_queue",
        "operation IN ('process', 'reprocess', 'ocr', 'stage_retry')",
    )


def downgrade():
    # A stage retry still under way cannot be told apart from a run once the operation is gone: stop it.
    op.execute(
        "UPDATE document_queue SET status = 'cancelled', completed_at = now() "
        "WHERE operation = 'stage_retry' AND status IN ('pending', 'queued', 'processing')"
    )
    op.execute("UPDATE document_queue SET operation = 'process' WHERE operation = 'stage_retry'")
    op.drop_constraint("document_queue_operation_valid", "document_queue", type_="check")
    op.create_check_constraint(
        "document_queue_operation_valid", "document_queue", "operation IN ('process', 'reprocess', 'ocr')"
    )
    op.execute(guard_function(EDGES))
    op.drop_column("document_pages", "note")
