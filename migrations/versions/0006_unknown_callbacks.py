"""unknown_callbacks: status callbacks whose message_id matched no message, kept for inspection

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 19:05:00

The HTTP callback receiver (and `stickerq callbacks apply`) stores a callback it cannot
match instead of refusing it. Indexed by message_id (an early callback is applied when its
message appears) and by received_at (recent ones are checked again; listings are newest first).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "unknown_callbacks",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("message_id", sa.String(length=128), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("error_code", sa.String(length=32), nullable=True),
        sa.Column("error_detail", sa.Text(), nullable=True),
        sa.Column("ref", sa.String(length=255), nullable=True),
        sa.Column("ref1", sa.String(length=255), nullable=True),
        sa.Column("ref2", sa.String(length=255), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_unknown_callbacks"),
    )
    op.create_index(
        "ix_unknown_callbacks_message_id", "unknown_callbacks", ["message_id"], unique=False
    )
    op.create_index(
        "ix_unknown_callbacks_received_at", "unknown_callbacks", ["received_at"], unique=False
    )


def downgrade() -> None:
    op.drop_table("unknown_callbacks")
