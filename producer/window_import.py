"""`stickerq window import` (and POST /windows/import): the window ledger backfilled from a
CRM's CSV of incoming messages (producer/window_csv.py), all or nothing, of any size, in
flat memory. Two passes:

1. The check streams the file and writes its good rows, normalised, to a spool (a temporary
   file): no row is held, and none is normalised twice (phonenumbers' ~60 µs a number is
   most of an import's time). A bad row stops the import there: nothing is stored.
2. The store reads the spool back STORE_CHUNK rows at a time, each chunk given to
   `record_inbound`, all in one transaction. An error on the way (the database gone, a full
   disk) rolls all of it back, and the write lock (SQLite has one writer) is held for the
   store alone, not the check. Each chunk's pairs also go to a temporary table, where the
   database counts the file's pairs, customers and business numbers: distinct values are
   not held here either.

`record_inbound` keeps each pair's latest time: importing a file again, or an older one,
never moves a window back.
"""

from __future__ import annotations

import csv
import logging
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TextIO

from sqlalchemy import Column, MetaData, String, Table, distinct, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from stickerq.audit import Action, record
from stickerq.db import open_sessions
from stickerq.models import utcnow
from stickerq.producer.window_csv import UNIX, ImportStep, Progress, check_file
from stickerq.queue import chunks
from stickerq.settings import Settings
from stickerq.window_ledger import Inbound, record_inbound

log = logging.getLogger(__name__)

STORE_CHUNK = 5_000  # rows given to record_inbound at a time

# The file's pairs, counted by the database: a temporary table of the store's transaction.
_PAIRS = Table(
    "stickerq_imported_pairs",
    MetaData(),
    Column("sender", String(20), primary_key=True),
    Column("customer", String(20), primary_key=True),
    prefixes=["TEMPORARY"],
    postgresql_on_commit="DROP",
)


@dataclass
class WindowImportResult:
    """What an import stored: its rows, the file's distinct pairs (business number and
    customer), customers and business numbers, and the time range of its messages."""

    rows: int = 0
    pairs: int = 0
    customers: int = 0
    senders: int = 0
    first_inbound_at: datetime | None = None
    last_inbound_at: datetime | None = None


def import_windows(
    settings: Settings,
    path: Path,
    *,
    actor: str,
    on_progress: Progress | None = None,
    now: datetime | None = None,
    sessions: sessionmaker[Session] | None = None,
) -> WindowImportResult:
    """Check the whole file, then store it in one transaction (the module's docstring); a bad
    row stores nothing: WindowImportError lists the bad cells by line and column. The audit
    log gets one entry under `actor`, with the counts (no number)."""
    report = on_progress or _ignore
    with tempfile.TemporaryFile("w+", encoding="utf-8", newline="", prefix="stickerq-") as spool:
        checked = check_file(path, spool, now or utcnow(), report)
        spool.seek(0)
        with open_sessions(settings.database_url, sessions) as factory, factory.begin() as s:
            pairs, customers, senders = _store(s, spool, checked.rows, report)
            counts = {"rows": checked.rows, "pairs": pairs, "customers": customers}
            record(s, actor, Action.WINDOWS_IMPORTED, "window_ledger", **counts, senders=senders)
    result = WindowImportResult(
        rows=checked.rows,
        pairs=pairs,
        customers=customers,
        senders=senders,
        first_inbound_at=checked.first_inbound_at,
        last_inbound_at=checked.last_inbound_at,
    )
    log.info(
        "window import: %s rows, %s pairs, %s customers, %s business numbers",
        result.rows,
        result.pairs,
        result.customers,
        result.senders,
    )
    return result


def _store(session: Session, spool: TextIO, rows: int, report: Progress) -> tuple[int, int, int]:
    """The spool's rows into the ledger, STORE_CHUNK at a time, in the caller's transaction;
    returns the file's distinct pairs, customers and business numbers."""
    connection = session.connection()
    _PAIRS.drop(connection, checkfirst=True)  # a session of the caller's may have one left
    _PAIRS.create(connection)
    insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    stage = insert(_PAIRS).on_conflict_do_nothing()
    stored = 0
    for chunk in chunks(csv.reader(spool), STORE_CHUNK):
        messages = _latest_of_each_pair(chunk)
        record_inbound(session, messages)
        connection.execute(stage, [{"sender": m.sender, "customer": m.customer} for m in messages])
        stored += len(chunk)
        report(ImportStep("store", stored, rows))
    counted = connection.execute(
        select(
            func.count(),
            func.count(distinct(_PAIRS.c.customer)),
            func.count(distinct(_PAIRS.c.sender)),
        )
    ).one()
    _PAIRS.drop(connection)
    return int(counted[0]), int(counted[1]), int(counted[2])


def _latest_of_each_pair(chunk: list[list[str]]) -> list[Inbound]:
    """A chunk of the spool as messages, the latest of each pair only (as `record_inbound`
    keeps): a conversation's rows come together, so most rows fold away before a message
    is made of them."""
    latest: dict[tuple[str, str], tuple[int, str]] = {}
    for sender, customer, micros, kind in chunk:
        at, kept = int(micros), latest.get((sender, customer))
        if kept is None or at > kept[0]:
            latest[sender, customer] = (at, kind)
    return [
        Inbound(sender, customer, UNIX + timedelta(microseconds=at), kind or None)
        for (sender, customer), (at, kind) in latest.items()
    ]


def _ignore(step: ImportStep) -> None:
    """No progress shown."""
