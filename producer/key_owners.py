"""Who is storing an idempotency key, and whether that request still lives.

A retry that finds its key reserved without a campaign must tell a first request still
storing (answer "in progress, retry later") from one that died (take the key over now, not
after a timeout). Each backend has its own proof of life:

- PostgreSQL (many hosts): the owner holds a transaction-level advisory lock on the key for
  as long as it stores, in an open transaction on a connection of its own. A process that
  dies closes its connection, the transaction ends and the lock goes with it (behind
  PgBouncer in transaction mode too: a client that leaves mid-transaction takes its server
  connection down). Whoever gets the lock knows no one else is storing the key, so any
  reservation it finds is a dead request's. A host that vanishes without closing its socket
  is found dead by PostgreSQL's TCP keepalive, or at the latest after LOCK_IDLE_LIMIT_SECONDS.
- SQLite (one host): the row names the owner's process (boot id, pid, start time). The owner
  lives while that very process runs (a reused pid has another start time); in this process,
  while its reservation is among those being stored.

A proof decides only when a key is taken over, never whether a key makes two campaigns: an
owner's store writes its campaign on the key only where the key still names the owner's
token (producer/idempotency.py), so an owner wrongly thought dead stores nothing.
"""

from __future__ import annotations

import hashlib
import os
import platform
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from functools import cache
from pathlib import Path
from typing import Protocol

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from stickerq.db import make_engine

# The first of the two int4 keys of pg_try_advisory_xact_lock: names stickerq's idempotency
# keys among the database's advisory locks ("stkq").
LOCK_CLASS = int.from_bytes(b"stkq", "big")
# A lock holder idle in its transaction this long is ended by PostgreSQL: what bounds a host
# that vanished without closing its socket. Far above a store's time (1M recipients: < 1 min).
LOCK_IDLE_LIMIT_SECONDS = 600
LOCK_APPLICATION_NAME = "stickerq-idempotency-lock"  # how pg_stat_activity shows a holder


class OwnerProof(Protocol):
    """This request's claim on a key, and its test of another request's."""

    token: str  # this reservation's own id: the row names it while this request owns the key
    process: str  # this process, written on the row (SQLite reads it; operators may too)
    held: bool  # False: a live request is storing the key, so this one may not reserve it

    def owner_alive(self, process: str | None, token: str | None) -> bool:
        """Whether the request that reserved the key (as the row names it) still stores it."""
        ...

    def close(self) -> None: ...


@contextmanager
def owner_proof(sessions: sessionmaker[Session], key: str) -> Iterator[OwnerProof]:
    """The proof for `key` on the backend of `sessions`, given up when the block ends."""
    engine: Engine = sessions.kw["bind"]
    postgresql = engine.dialect.name == "postgresql"
    proof: OwnerProof = AdvisoryLock(engine, key) if postgresql else ThisProcess()
    try:
        yield proof
    finally:
        proof.close()


def lock_ids(key: str) -> tuple[int, int]:
    """The key's two int4 advisory lock keys. Two keys sharing a hash only make one of them
    wait for the other's store: a 409 and a retry, never a wrong answer."""
    digest = hashlib.sha256(key.encode()).digest()
    return LOCK_CLASS, int.from_bytes(digest[:4], "big", signed=True)


class AdvisoryLock:
    """PostgreSQL: the key's advisory lock, held in an open transaction until close()."""

    def __init__(self, engine: Engine, key: str) -> None:
        self.token = uuid.uuid4().hex
        self.process = f"{platform.node()}:{os.getpid()}"
        self._connection: Connection | None = _lock_engine(engine).connect()
        try:
            self._connection.exec_driver_sql(
                f"SET LOCAL idle_in_transaction_session_timeout = '{LOCK_IDLE_LIMIT_SECONDS}s'"
            )
            classid, objid = lock_ids(key)
            taken = self._connection.execute(
                text("SELECT pg_try_advisory_xact_lock(:classid, :objid)"),
                {"classid": classid, "objid": objid},
            ).scalar()
        except BaseException:
            self.close()
            raise
        self.held = bool(taken)
        if not self.held:  # nothing to keep: the connection goes back at once
            self.close()

    def owner_alive(self, process: str | None, token: str | None) -> bool:
        # Holding the lock proves no one else stores the key; not holding it, that someone does.
        return not self.held

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        # Its rollback ends the transaction, and the lock with it; a connection gone already
        # (the idle limit) took the lock with it.
        with suppress(DBAPIError):
            connection.close()


_lock_engines: dict[tuple[int, str], Engine] = {}
_lock_engines_guard = threading.Lock()


def _lock_engine(engine: Engine) -> Engine:
    """A pool of lock connections beside `engine`'s, per process: a lock never waits for a
    connection its own store holds (which could deadlock a pool), nor a store for a lock.
    Unbounded overflow: at most one lock per request in flight."""
    url = engine.url.set(query={**engine.url.query, "application_name": LOCK_APPLICATION_NAME})
    rendered = url.render_as_string(hide_password=False)
    with _lock_engines_guard:
        key = (os.getpid(), rendered)
        if key not in _lock_engines:
            _lock_engines[key] = make_engine(rendered, pool_size=2, max_overflow=-1)
        return _lock_engines[key]


_storing: set[str] = set()  # the tokens this process is storing keys under (SQLite)
_storing_guard = threading.Lock()


class ThisProcess:
    """SQLite, one host: the row names the owner's process; alive while that process runs."""

    held = True  # nothing to take: the row itself names its owner

    def __init__(self) -> None:
        self.token = uuid.uuid4().hex
        self.process = process_identity(os.getpid())
        with _storing_guard:  # before the row names it: a racing retry must find it alive
            _storing.add(self.token)

    def owner_alive(self, process: str | None, token: str | None) -> bool:
        if process is None:  # reserved before owners were recorded (migration 0012)
            return False
        if process == self.process:
            with _storing_guard:
                return token in _storing
        return process_alive(process)

    def close(self) -> None:
        with _storing_guard:
            _storing.discard(self.token)


_PROC = Path("/proc")


@cache
def _boot_id() -> str:
    """This boot of the host (Linux); '' where unknown."""
    try:
        return (_PROC / "sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _started(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), None if no such live
    process (a zombie is dead: it stores nothing any more)."""
    try:
        stat = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
    state, start = fields[0], fields[19]  # stat(5) fields 3 and 22
    return None if state in ("Z", "X") else start


def process_identity(pid: int) -> str:
    """`boot:pid:start`: names one process on one host for ever (start time and boot id left
    empty where /proc does not give them)."""
    return f"{_boot_id()}:{pid}:{_started(pid) or ''}"


def process_alive(identity: str) -> bool:
    """Whether the process `identity` names still runs on this host."""
    boot, pid_text, start = identity.rsplit(":", 2)
    if not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if boot and _boot_id() and boot != _boot_id():
        return False  # the host restarted since
    if _PROC.joinpath("self/stat").exists():
        started = _started(pid)
        return started is not None and (not start or started == start)
    if sys.platform == "win32":
        return True  # no cheap test: wait for the owner (a campaign is never made twice)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
