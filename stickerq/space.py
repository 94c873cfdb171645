"""Giving back the space of deleted rows: SQLite shrinks its file, PostgreSQL reuses it.

SQLite files made by stickerq keep free pages apart (`PRAGMA auto_vacuum = INCREMENTAL`, set
by stickerq.db before the first table), and `PRAGMA incremental_vacuum` returns them to the
file system. A file made before that (auto_vacuum 0) is converted once: the pragma, then a
VACUUM, which rewrites the whole file and needs as much free disk again. PostgreSQL never
shrinks a table on its own: VACUUM (ANALYZE) marks what deleted rows held as free for the
next rows (autovacuum does the same in time); only VACUUM FULL, which locks each table while
it copies it, would give disk back, and stickerq leaves that to an operator.
`stickerq db vacuum` calls `give_space_back`; the retention purge calls `return_free_pages`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

INCREMENTAL = 2  # PRAGMA auto_vacuum's value for INCREMENTAL (0 none, 1 full)


@dataclass(frozen=True, slots=True)
class SpaceGiven:
    """What give_space_back did: `action` in words; the SQLite file's bytes before and after
    (None on PostgreSQL, whose tables keep their size)."""

    action: str
    bytes_before: int | None = None
    bytes_after: int | None = None

    @property
    def bytes_freed(self) -> int | None:
        if self.bytes_before is None or self.bytes_after is None:
            return None
        return self.bytes_before - self.bytes_after


def give_space_back(engine: Engine) -> SpaceGiven:
    """SQLite: return free pages to the file system (converting an older file first).
    PostgreSQL: VACUUM (ANALYZE) the database (stickerq's), so that new rows reuse the space."""
    if engine.dialect.name == "sqlite":
        return _sqlite(engine)
    return _postgres(engine)


def return_free_pages(engine: Engine) -> SpaceGiven | None:
    """After a purge: a SQLite file made with auto_vacuum=INCREMENTAL gives its free pages
    back; anything else is left as it is (None): converting a file rewrites it whole, which
    `stickerq db vacuum` does when an operator asks, never beat."""
    if engine.dialect.name != "sqlite":
        return None
    with engine.connect() as connection:
        if connection.exec_driver_sql("PRAGMA auto_vacuum").scalar() != INCREMENTAL:
            return None
    return _sqlite(engine)


def _sqlite(engine: Engine) -> SpaceGiven:
    path = engine.url.database
    raw = engine.raw_connection()  # no BEGIN: VACUUM refuses to run in a transaction
    try:
        cursor: Any = raw.driver_connection.cursor()  # type: ignore[union-attr]
        before = _file_bytes(cursor, path)
        mode = cursor.execute("PRAGMA auto_vacuum").fetchone()[0]
        if mode == INCREMENTAL:
            # executescript steps the pragma to its end: execute() would free one page.
            cursor.executescript("PRAGMA incremental_vacuum")
            action = "returned the file's free pages (PRAGMA incremental_vacuum)"
        else:
            cursor.execute("PRAGMA auto_vacuum=INCREMENTAL")
            cursor.execute("VACUUM")
            action = (
                "converted the file to auto_vacuum=INCREMENTAL and rewrote it (VACUUM); "
                "later runs only return free pages"
            )
        after = _file_bytes(cursor, path)
        cursor.close()
    finally:
        raw.close()
    return SpaceGiven(action, before, after)


def _file_bytes(cursor: Any, path: str | None) -> int | None:
    """The database file's size once its write-ahead log is folded in and emptied."""
    cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    if not path or path == ":memory:" or path.startswith("file:"):
        return None
    return Path(path).expanduser().stat().st_size


def _postgres(engine: Engine) -> SpaceGiven:
    # The whole database (stickerq's own): table names cannot be bound parameters, and no
    # SQL of stickerq is built by formatting strings (tests/test_secrets.py).
    with engine.connect() as connection:
        autocommit = connection.execution_options(isolation_level="AUTOCOMMIT")
        autocommit.exec_driver_sql("VACUUM (ANALYZE)")
    return SpaceGiven(
        "VACUUM (ANALYZE) of the database: the space of deleted rows is free for new "
        "ones; the tables keep their size on disk (VACUUM FULL, which locks each table while "
        "it rewrites it, would give it back)"
    )
