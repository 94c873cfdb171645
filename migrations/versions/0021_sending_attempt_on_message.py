"""sending attempt on the message: a WA202 send has no `attempts` row, only its latency

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-08 02:00:00

Issues 23 ("A year of campaigns": bytes per message) and 27 ("Throughput per core": the
database's work per message). `messages.sent_latency_ms` holds the latency of the request
that sent the message; with `sent_at` and `last_http_status` it is that attempt, and a WA202
send writes no `attempts` row from now on (stickerq/sending_attempts.py). Rows already
written keep their attempts: nothing is rewritten, so the upgrade is instant on PostgreSQL
and SQLite alike. The downgrade writes every attempt kept on a message out to `attempts`
before it drops the column, so the older code finds its history whole.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("messages", sa.Column("sent_latency_ms", sa.REAL(), nullable=True))


def downgrade() -> None:
    op.execute(
        """
        INSERT INTO attempts
            (message_pk, number, started_at, latency_ms, http_status, code, action)
        SELECT id, attempts, sent_at, sent_latency_ms, last_http_status, 'WA202', 'sent'
        FROM messages
        WHERE sent_at IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM attempts
            WHERE attempts.message_pk = messages.id
              AND attempts.action = 'sent' AND attempts.started_at = messages.sent_at
        )
        """
    )
    op.drop_column("messages", "sent_latency_ms")  # SQLite 3.35 drops a plain column in place
