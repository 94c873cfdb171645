"""Streaming a campaign's message rows into the database inside the caller's transaction.

Rows come in file order; a recipient met again is dropped, the first row winning, by the
unique (campaign, recipient) index, so nothing but the current chunk is held in memory.
PostgreSQL takes them through COPY into a temporary table, then one INSERT ... SELECT:
the server reads the stream while the producer is still validating the rest of the file,
and no per-row statement is bound. SQLite takes executemany inserts in chunks.

Recipients on the account's suppression list are dropped on the way (counted once per
number): on PostgreSQL one DELETE ... USING suppressions from the staged rows before the
INSERT ... SELECT (a hash join with the account's list, ~1 s at a million numbers); on SQLite
one lookup on the list's primary keys per chunk (`found_on_list`). Erased suppressed numbers
(stickerq/suppression_list.py) are matched by their keyed hash, which is computed for each
row only when the account has some: one probe of `erased_suppressions` before the rows.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import column, literal, select, table, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from stickerq.models import Message
from stickerq.queue import chunks
from stickerq.suppression_list import (
    SET_THE_KEY,
    ErasureKeyMissing,
    PhoneHasher,
    found_on_list,
    has_erased,
)

# (recipient, ref, ref1, ref2, sender): sender None is the campaign's
MessageRow = tuple[str, str | None, str | None, str | None, str | None]

INSERT_CHUNK = 5_000
_COLUMNS = ("recipient", "ref", "ref1", "ref2", "sender")
_STAGE = "stickerq_incoming_messages"
_CREATE_STAGE = (
    "CREATE TEMPORARY TABLE stickerq_incoming_messages (seq bigint, recipient text, "
    "ref text, ref1 text, ref2 text, sender text, recipient_hash text) ON COMMIT DROP"
)
_COPY_TO_STAGE = (
    "COPY stickerq_incoming_messages (seq, recipient, ref, ref1, ref2, sender{}) FROM STDIN"
)
# The staged rows of suppressed numbers go, counted once per number.
_DROP_SUPPRESSED = (
    "WITH dropped AS (DELETE FROM stickerq_incoming_messages AS incoming USING suppressions "
    "WHERE suppressions.sid = :sid AND suppressions.phone = incoming.recipient "
    "RETURNING incoming.recipient) SELECT count(DISTINCT recipient) FROM dropped"
)
# ... and those of erased suppressed numbers, by hash (a number on both lists counted once).
_DROP_SUPPRESSED_AND_ERASED = (
    "WITH clear AS (DELETE FROM stickerq_incoming_messages AS incoming USING suppressions "
    "WHERE suppressions.sid = :sid AND suppressions.phone = incoming.recipient "
    "RETURNING incoming.recipient), "
    "erased AS (DELETE FROM stickerq_incoming_messages AS incoming USING erased_suppressions "
    "WHERE erased_suppressions.sid = :sid "
    "AND erased_suppressions.phone_hash = incoming.recipient_hash "
    "RETURNING incoming.recipient) "
    "SELECT count(DISTINCT recipient) FROM (SELECT recipient FROM clear "
    "UNION ALL SELECT recipient FROM erased) AS dropped"
)
# The INSERT ... SELECT sorts the staged rows into file order: in memory, not on disk.
_SORT_IN_MEMORY = "SET LOCAL work_mem = '256MB'"


def insert_messages(
    session: Session,
    campaign_id: int,
    rows: Iterable[MessageRow],
    sid: str,
    hasher: PhoneHasher | None = None,
) -> int:
    """Store the rows whose recipient is not suppressed on `sid`; returns the suppressed
    numbers dropped. Raises ErasureKeyMissing when the account has erased suppressions and
    `hasher` is None (no STICKERQ_ERASURE_KEY)."""
    if session.get_bind().dialect.name == "postgresql":
        return _copy_then_insert(session, campaign_id, rows, sid, hasher)
    return _insert_in_chunks(session, campaign_id, rows, sid, hasher)


def _copy_then_insert(
    session: Session,
    campaign_id: int,
    rows: Iterable[MessageRow],
    sid: str,
    hasher: PhoneHasher | None,
) -> int:
    by_hash = _erased_hasher(session, sid, hasher)
    session.execute(text(_CREATE_STAGE))
    driver_connection = session.connection().connection.driver_connection
    assert driver_connection is not None  # a pooled psycopg connection, checked out
    copy_rows = _COPY_TO_STAGE.format(", recipient_hash" if by_hash else "")
    with driver_connection.cursor() as cursor, cursor.copy(copy_rows) as copy:
        if by_hash is None:
            for seq, row in enumerate(rows):
                copy.write_row((seq, *row))
        else:
            for seq, row in enumerate(rows):
                copy.write_row((seq, *row, by_hash(row[0])))
    session.execute(text(_SORT_IN_MEMORY))  # and the suppression list's hash, below
    drop = _DROP_SUPPRESSED if by_hash is None else _DROP_SUPPRESSED_AND_ERASED
    suppressed = int(session.execute(text(drop), {"sid": sid}).scalar_one())
    stage = table(_STAGE, column("seq"), *(column(name) for name in _COLUMNS))
    in_file_order = select(literal(campaign_id), *(stage.c[name] for name in _COLUMNS)).order_by(
        stage.c.seq
    )
    session.execute(
        postgresql.insert(Message)
        .from_select(["campaign_id", *_COLUMNS], in_file_order)
        .on_conflict_do_nothing(index_elements=["campaign_id", "recipient"])
    )
    return suppressed


def _erased_hasher(session: Session, sid: str, hasher: PhoneHasher | None) -> PhoneHasher | None:
    """The hasher to stage each row's hash with: only when the account has erased numbers."""
    if not has_erased(session, sid):
        return None
    if hasher is None:
        raise ErasureKeyMissing(
            f"account {sid} has erased suppressions, which only STICKERQ_ERASURE_KEY can "
            f"match; nothing was stored: {SET_THE_KEY}"
        )
    return hasher


def _insert_in_chunks(
    session: Session,
    campaign_id: int,
    rows: Iterable[MessageRow],
    sid: str,
    hasher: PhoneHasher | None,
) -> int:
    insert_new = sqlite.insert(Message).on_conflict_do_nothing(
        index_elements=["campaign_id", "recipient"]
    )
    by_hash = _erased_hasher(session, sid, hasher)
    suppressed: set[str] = set()  # only the numbers found on the list
    for chunk in chunks(rows, INSERT_CHUNK):
        found = found_on_list(session, sid, {row[0] for row in chunk}, by_hash)
        suppressed |= found
        params = [
            {"campaign_id": campaign_id, **dict(zip(_COLUMNS, row, strict=True))}
            for row in chunk
            if row[0] not in found
        ]
        if params:
            session.execute(insert_new, params)
    return len(suppressed)
