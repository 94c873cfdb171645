"""unknown_callbacks: one row per (message_id, status)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 06:00:00

A callback of no known message is kept once: the receiver inserts it or ignores it on this
unique index (ON CONFLICT DO NOTHING on both backends), so the copies Kaleyra sends again add
nothing. The rows kept before are deduplicated first (the oldest of each pair stays, as the
insert-or-ignore keeps the first); the index on message_id alone goes, since the new one
leads with it.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Plain SQL that both SQLite and PostgreSQL run; it finds the older copy through the
# message_id index, which is dropped only after.
DEDUPLICATE = """
DELETE FROM unknown_callbacks
WHERE EXISTS (
    SELECT 1 FROM unknown_callbacks AS kept
    WHERE kept.message_id = unknown_callbacks.message_id
      AND kept.status = unknown_callbacks.status
      AND kept.id < unknown_callbacks.id
)
"""


def upgrade() -> None:
    op.execute(DEDUPLICATE)
    op.create_index(
        "uq_unknown_callbacks_message_id_status",
        "unknown_callbacks",
        ["message_id", "status"],
        unique=True,
    )
    op.drop_index("ix_unknown_callbacks_message_id", table_name="unknown_callbacks")


def downgrade() -> None:
    op.create_index("ix_unknown_callbacks_message_id", "unknown_callbacks", ["message_id"])
    op.drop_index("uq_unknown_callbacks_message_id_status", table_name="unknown_callbacks")
