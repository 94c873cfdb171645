"""smaller rows: messages' message_id index holds only messages that have one

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 12:10:00

Issue 23 ("A year of campaigns"), measured by bench/storage.py (docs/performance.md,
"storage"). `ix_messages_message_id` becomes partial (`WHERE message_id IS NOT NULL`): a
pending, sending or failed message has none, and every version of such a row (the insert,
the claim, a leaving mark that could not stay on its page) put an entry there for nothing.
Every statement that looks a message up by message_id (callbacks, unknown callbacks,
`messages show`, suppressions from callbacks) compares it with `=` or `IN`, which proves the
predicate on both backends, for a generic plan too
(tests/producer/test_message_id_plans.py).

The index is rebuilt, which on PostgreSQL holds off writes to `messages` while it is built
(seconds per million messages).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

HAS_MESSAGE_ID = "message_id IS NOT NULL"


def upgrade() -> None:
    op.drop_index("ix_messages_message_id", table_name="messages")
    op.create_index(
        "ix_messages_message_id",
        "messages",
        ["message_id"],
        postgresql_where=sa.text(HAS_MESSAGE_ID),
        sqlite_where=sa.text(HAS_MESSAGE_ID),
    )


def downgrade() -> None:
    op.drop_index("ix_messages_message_id", table_name="messages")
    op.create_index("ix_messages_message_id", "messages", ["message_id"])
