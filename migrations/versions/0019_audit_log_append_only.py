"""audit log: PostgreSQL refuses updates and deletes but an erasure's

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07 23:00:00

`audit_log` is append-only (stickerq/audit.py). No code path updates or deletes an entry but
an erasure, which puts a number's keyed hash where the number was; on PostgreSQL a trigger
makes that a rule of the database too, for a bug or a hand-written statement: an UPDATE or
DELETE passes only in a transaction that set `stickerq.audit_rewrite` to `on`
(`stickerq.audit.allow_rewrite`, `SET LOCAL`: it ends with the transaction). TRUNCATE, which
fires no row trigger, stays the owner's (the tests empty tables with it).

SQLite, the single-host default, has no per-transaction setting a trigger could read: there
the code path is the only guard.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_REFUSE = """
CREATE OR REPLACE FUNCTION stickerq_audit_log_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF coalesce(current_setting('stickerq.audit_rewrite', true), '') <> 'on' THEN
        RAISE EXCEPTION 'audit_log is append-only: % of entry % refused', TG_OP, OLD.id
            USING HINT = 'only an erasure (stickerq erase) rewrites entries';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END
$$"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(_REFUSE)
    op.execute(
        "CREATE TRIGGER stickerq_audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
        "FOR EACH ROW EXECUTE FUNCTION stickerq_audit_log_append_only()"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS stickerq_audit_log_append_only ON audit_log")
    op.execute("DROP FUNCTION IF EXISTS stickerq_audit_log_append_only()")
