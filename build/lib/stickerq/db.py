"""Engine and session factory for SQLite (WAL, busy timeout) and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.orm import Session, sessionmaker

SQLITE_BUSY_TIMEOUT_MS = 30_000
UPGRADE_ADVICE = "the database has no stickerq tables (or an old schema): run `stickerq db upgrade`"


def lacks_schema(exc: BaseException) -> bool:
    """A database error that means the tables are missing or behind the code's migrations."""
    if not isinstance(exc, OperationalError | ProgrammingError):
        return False
    message = str(exc.orig) if exc.orig is not None else str(exc)
    return "no such table" in message or "does not exist" in message


def make_engine(url: str, **kwargs: Any) -> Engine:
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    if url.startswith("sqlite"):
        _make_folder_of(url)
        engine = create_engine(
            url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}, **kwargs
        )
        event.listen(engine, "connect", _tune_sqlite)
        # pysqlite's own BEGIN handling defers locks; BEGIN IMMEDIATE makes a claim's
        # read-then-write atomic against other worker processes.
        event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))
        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


def _make_folder_of(sqlite_url: str) -> None:
    """SQLite creates the file but not its folder (the default one is the user's data dir)."""
    database = make_url(sqlite_url).database
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)


def _tune_sqlite(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (see make_engine)
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")  # = SQLITE_BUSY_TIMEOUT_MS; PRAGMAs take no params
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def open_sessions(
    url: str, sessions: sessionmaker[Session] | None = None
) -> Iterator[sessionmaker[Session]]:
    """The caller's session factory if given, else one on a fresh engine that is disposed
    (its connections closed) at the end."""
    if sessions is not None:
        yield sessions
        return
    engine = make_engine(url)
    try:
        yield make_session_factory(engine)
    finally:
        engine.dispose()
