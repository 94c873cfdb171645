"""Engine and session factory for SQLite (WAL, busy timeout) and PostgreSQL, direct or
behind a pooler in transaction mode (`?pooler=pgbouncer` in the URL)."""

from __future__ import annotations

import atexit
import os
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import psycopg
from sqlalchemy import (
    URL,
    BigInteger,
    ColumnElement,
    CursorResult,
    Engine,
    Result,
    any_,
    bindparam,
    create_engine,
    event,
    make_url,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.orm import InstrumentedAttribute, Session, sessionmaker

from stickerq.errors import ConfigurationError

SQLITE_BUSY_TIMEOUT_MS = 30_000
UPGRADE_ADVICE = "the database has no stickerq tables (or an old schema): run `stickerq db upgrade`"

# A pooler in transaction mode hands each transaction whichever server connection is free, so
# nothing a session keeps between transactions may be relied on. Of that, only psycopg's
# prepared statements are ours (it prepares a statement run prepare_threshold times); the URL
# names the pooler (postgresql://user@host:6432/db?pooler=pgbouncer) and they are turned off.
# In the URL, not a setting of its own: every connection (pools, the leaving thread's, the
# idempotency locks', Alembic's) is made from the URL, so none can miss it.
POOLER_PARAMETER = "pooler"
POOLERS = ("pgbouncer",)
PREPARED_STATEMENT_MISSING = "26000"  # SQLSTATE invalid_sql_statement_name


def rows_changed(result: Result[Any]) -> int:
    """The rows an UPDATE, DELETE or INSERT changed (Session.execute types its result as a
    plain Result, which has no rowcount)."""
    return cast("CursorResult[Any]", result).rowcount


def one_of(
    column: ColumnElement[int] | InstrumentedAttribute[int], dialect_name: str, name: str = "pks"
) -> ColumnElement[bool]:
    """`column` is one of the integers bound as `name` (a list). On PostgreSQL one array
    parameter: one statement text for any number, prepared once, and a 10,000-value list
    costs no render and bind per value (it halved the purge's speed, bench/purge.py).
    Elsewhere an expanding IN list."""
    if dialect_name == "postgresql":
        return column == any_(bindparam(name, type_=ARRAY(BigInteger())))
    return column.in_(bindparam(name, expanding=True))


def lacks_schema(exc: BaseException) -> bool:
    """A database error that means the tables are missing or behind the code's migrations."""
    if not isinstance(exc, OperationalError | ProgrammingError):
        return False
    if getattr(exc.orig, "sqlstate", None) == PREPARED_STATEMENT_MISSING:
        return False  # a pooler in transaction mode that the URL does not name: not the schema
    message = str(exc.orig) if exc.orig is not None else str(exc)
    return "no such table" in message or "does not exist" in message


def pooler_of(url: str | URL) -> str | None:
    """The pooler in transaction mode that the URL names (`?pooler=pgbouncer`), else None.
    Raises ConfigurationError for a pooler stickerq does not know, or on a SQLite URL."""
    parsed = make_url(url) if isinstance(url, str) else url
    pooler = parsed.query.get(POOLER_PARAMETER)
    if pooler is None:
        return None
    if parsed.get_backend_name() != "postgresql":
        raise ConfigurationError(
            f"the database URL names a pooler ({POOLER_PARAMETER}={pooler}) but is not "
            "PostgreSQL's: a pooler goes only on a postgresql:// URL"
        )
    if pooler not in POOLERS:
        raise ConfigurationError(
            f"the database URL's {POOLER_PARAMETER}={pooler!r} is not a pooler stickerq knows: "
            f"give {POOLER_PARAMETER}=pgbouncer (PgBouncer, in transaction or session mode), "
            "or leave it out for a direct connection"
        )
    return str(pooler)


def make_engine(url: str, **kwargs: Any) -> Engine:
    pooler = pooler_of(url)
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
    # A short-lived command checks a pooled connection before using it; a worker, whose every
    # statement runs under outages.until_database_is_back, passes pool_pre_ping=False and
    # spares a round trip per transaction (a lost connection fails once, then the whole
    # pool is invalidated and the call tried again).
    kwargs.setdefault("pool_pre_ping", True)
    engine = create_engine(url, **kwargs)
    if pooler is not None:
        # The URL keeps the parameter (a URL derived from engine.url still names the pooler);
        # psycopg is given what it means instead.
        event.listen(engine, "do_connect", _through_pooler)
    return engine


def _through_pooler(_dialect: Any, _record: Any, _args: Any, params: dict[str, Any]) -> None:
    params.pop(POOLER_PARAMETER, None)
    params["prepare_threshold"] = None  # psycopg: never prepare


def connect_psycopg(url: URL, **kwargs: Any) -> psycopg.Connection[Any]:
    """A psycopg connection of its own to `url` (a SQLAlchemy URL of PostgreSQL): what a
    pooled engine's connections are, prepared statements off behind a pooler."""
    if pooler_of(url) is not None:
        kwargs["prepare_threshold"] = None
    query = {k: v for k, v in url.query.items() if k != POOLER_PARAMETER}
    plain = url.set(drivername="postgresql", query=query)
    return psycopg.connect(plain.render_as_string(hide_password=False), **kwargs)


def _make_folder_of(sqlite_url: str) -> None:
    """SQLite creates the file but not its folder (the default one is the user's data dir)."""
    database = make_url(sqlite_url).database
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)


def _tune_sqlite(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (see make_engine)
    cursor = dbapi_conn.cursor()
    # A new file keeps its free pages apart, to be given back (stickerq/space.py): this takes
    # effect only before the first table is made, which migrate.py does on this connection.
    # On an older file it changes nothing until `stickerq db vacuum` converts it.
    cursor.execute("PRAGMA auto_vacuum=INCREMENTAL")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")  # = SQLITE_BUSY_TIMEOUT_MS; PRAGMAs take no params
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


# One engine (one connection pool) per database and process: a CLI run or a producer call
# reuses it instead of building and dropping a pool per function. A few are kept, for
# processes that talk to several databases (tests, benchmarks); the oldest is disposed.
_ENGINES_KEPT = 8
_engines: OrderedDict[tuple[int, str], Engine] = OrderedDict()
_engines_lock = threading.Lock()


def shared_engine(url: str) -> Engine:
    """This process's engine for `url`, made on first use; disposed when the process exits."""
    key = (os.getpid(), url)  # a forked child makes its own: the parent's pool is not its
    with _engines_lock:
        engine = _engines.get(key)
        if engine is None:
            engine = _engines[key] = make_engine(url)
            while len(_engines) > _ENGINES_KEPT:
                _drop(*_engines.popitem(last=False))
        else:
            _engines.move_to_end(key)
        return engine


def _drop(key: tuple[int, str], engine: Engine) -> None:
    # An engine inherited through fork shares its sockets with the parent: forget its
    # connections without closing them.
    engine.dispose(close=key[0] == os.getpid())


@atexit.register
def _dispose_engines() -> None:
    with _engines_lock:
        while _engines:
            _drop(*_engines.popitem())


@contextmanager
def open_sessions(
    url: str, sessions: sessionmaker[Session] | None = None
) -> Iterator[sessionmaker[Session]]:
    """The caller's session factory if given, else one on this process's engine for `url`."""
    yield sessions if sessions is not None else make_session_factory(shared_engine(url))
