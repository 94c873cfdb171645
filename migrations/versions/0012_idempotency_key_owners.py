"""idempotency_keys.owner_token, owner_process: a key whose owner died is taken over at once

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-08 10:00:00

A reservation names its owner: owner_token, which the owner's store checks as it commits
(a retry that took the key over changed it, so the owner stores nothing), and owner_process,
what a retry on SQLite tests for life (`boot:pid:start`; PostgreSQL proves life with an
advisory lock and keeps host:pid for operators). Both null on keys reserved before: a retry
takes such a reservation over. Before, a dead owner's key answered 409 for 10 minutes.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # add_column: nullable columns, added in place on both backends
    op.add_column("idempotency_keys", sa.Column("owner_token", sa.String(length=32)))
    op.add_column("idempotency_keys", sa.Column("owner_process", sa.String(length=255)))


def downgrade() -> None:
    # Plain SQL on both: SQLite (3.35+) drops a column in place.
    op.execute("ALTER TABLE idempotency_keys DROP COLUMN owner_process")
    op.execute("ALTER TABLE idempotency_keys DROP COLUMN owner_token")
