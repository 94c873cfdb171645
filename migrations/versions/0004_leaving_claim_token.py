"""messages.leaving_claim_token: the database's evidence of what a claim may have sent

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 16:20:00

A worker writes its claim's token here before a message's first request under that claim
leaves. A sweeper settling a dead claim whose record in Redis was lost then makes `unknown`
only these messages, and puts the others back to `pending`. Nullable, no default: on
PostgreSQL adding it rewrites nothing.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # add_column, not batch mode: SQLite adds a nullable column in place, keeping the
    # counting triggers of 0003 that a table rebuild would drop.
    op.add_column("messages", sa.Column("leaving_claim_token", sa.String(length=32)))


def downgrade() -> None:
    # Plain SQL on both: SQLite (3.35+) drops a column in place, keeping the triggers.
    op.execute("ALTER TABLE messages DROP COLUMN leaving_claim_token")
