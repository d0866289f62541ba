"""plain attempt errors: the attempt history's error_class in the product's words, not a library's class name

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-26 08:40:00

"""

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

# Class names recorded before, by the label `docqueue.errors.failure_label` gives their errors now.
_LABELS = {
    "worker lost": ["WorkerLost"],
    "file rejected": ["DocumentRejected", "MemoryCapExceeded", "ImageTooLarge"],
    "temporary problem": [
        "TransientError",
        "StageProcessDied",
        "ServiceUnavailable",
        "OperationalError",
        "InterfaceError",
        "ConnectionError",
        "TimeoutError",
    ],
    "time limit": ["StageTimeout"],
    "processing failed": ["StageError", "OcrError", "MalformedAnswer"],
}


def upgrade():
    cases = " ".join(
        f"WHEN error_class IN ({', '.join(repr(name) for name in names)}) THEN '{label}'"
        for label, names in _LABELS.items()
    )
    op.execute(
        f"UPDATE stage_attempts SET error_class = CASE {cases} ELSE 'internal error' END "
        f"WHERE error_class IS NOT NULL AND error_class NOT IN ({', '.join(repr(label) for label in _LABELS)}, "
        "'internal error')"
    )


def downgrade():
    pass  # the class names are in the log and Sentry; the labels read as well under the old code
