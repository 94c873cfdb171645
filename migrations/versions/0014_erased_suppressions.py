"""erased_suppressions: suppressed numbers that were erased, kept as keyed hashes

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-10 10:00:00

(0013 is written at the same time on another branch: the merge re-chains this one after it.)

`stickerq erase` removes a number from every table; a number that was on an account's
suppression list must stay suppressed, so its entry moves here as an HMAC-SHA256 of the
E.164 number under STICKERQ_ERASURE_KEY (stickerq/suppression_list.py). The primary key
(sid, phone_hash) is the lookup, as (sid, phone) is the list's.

The downgrade refuses while the table holds rows: dropping them would let those numbers get
stickers again.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "erased_suppressions",
        sa.Column("sid", sa.String(length=64), nullable=False),
        sa.Column("phone_hash", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sid", "phone_hash", name=op.f("pk_erased_suppressions")),
    )


def downgrade() -> None:
    kept = op.get_bind().execute(sa.text("SELECT count(*) FROM erased_suppressions")).scalar()
    if kept:
        raise RuntimeError(
            f"erased_suppressions holds {kept} erased suppressed number(s): downgrading would "
            "drop them and let those numbers get stickers again; nothing was changed"
        )
    op.drop_table("erased_suppressions")
