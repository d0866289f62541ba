"""callback safety: rotated signing secrets, and deliveries in flight per user

`users.callback_secret_previous` (and until when it still signs) lets a
user rotate their callback secret while receivers switch over;
`callback_deliveries.sending_until` marks deliveries a sender is POSTing,
so one user's slow receivers hold at most CALLBACK_USER_IN_FLIGHT of them.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 17:30:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("users", sa.Column("callback_secret_previous", sa.String(64), nullable=True))
    op.add_column("users", sa.Column("callback_secret_previous_until", sa.DateTime(timezone=True), nullable=True))
    op.add_column("callback_deliveries", sa.Column("sending_until", sa.DateTime(timezone=True), nullable=True))


def downgrade():
    op.drop_column("callback_deliveries", "sending_until")
    op.drop_column("users", "callback_secret_previous_until")
    op.drop_column("users", "callback_secret_previous")
