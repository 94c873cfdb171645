"""`send --to-window`: a campaign's recipients are every customer who wrote to the sender
since a time, read from the window ledger (stickerq/window_ledger.py): no list needed.

The customers are read by the ledger's (sender, last_inbound_at) index into a temporary file,
then streamed from it into the store's bulk insert, so the audience is never held in memory;
the store drops suppressed numbers as for any list. Such a campaign is sent `--in-window`
unless told otherwise: a customer who wrote 23 hours ago may be outside the window by the
time a batch is claimed.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from datetime import datetime
from typing import IO

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from stickerq.accounts import default_sender
from stickerq.db import open_sessions
from stickerq.errors import ConfigurationError, StickerqError
from stickerq.producer.failures import FilterError, parse_since
from stickerq.producer.phones import InvalidPhone, normalise_phone
from stickerq.producer.recipients import Recipient, RecipientReport
from stickerq.producer.request import CampaignRequest
from stickerq.settings import Settings
from stickerq.window_ledger import wrote_since

DEFAULT_SINCE = "24h"
READ_CHUNK = 5_000  # customers fetched at a time


class AudienceError(StickerqError):
    """`--to-window` was given what it cannot use."""


def audience_since(value: str | None) -> datetime:
    """The start of `--since` (a duration back from now, or an ISO time); 24 h by default."""
    try:
        return parse_since(value or DEFAULT_SINCE, option="--since")
    except FilterError as exc:
        raise AudienceError(str(exc)) from None


def audience_size(settings: Settings, request: CampaignRequest) -> tuple[str, int]:
    """`send --to-window --dry-run`: the sender, and how many recipients it would have."""
    account = settings.account(request.account)
    raw = request.sender or default_sender(account, settings.sender)
    if not raw:
        raise ConfigurationError(
            "no sender number: pass --from +91..., the business number whose customers wrote"
        )
    try:
        sender = normalise_phone(raw, settings.default_region)
    except InvalidPhone as exc:
        raise AudienceError(f"--from {raw!r}: {exc}") from None
    since = audience_since(request.window_since)
    with open_sessions(settings.database_url) as sessions, sessions() as session:
        return sender, count_audience(session, sender, since)


def count_audience(session: Session, sender: str, since: datetime) -> int:
    """How many customers wrote to `sender` since `since` (and were not shut out since)."""
    customers = wrote_since(sender, since).subquery()
    return session.scalar(select(func.count()).select_from(customers)) or 0


def window_recipients(
    sessions: sessionmaker[Session], sender: str, since: datetime, report: RecipientReport
) -> Iterator[Recipient]:
    """The audience as recipients, counted in `report` as the store takes them.

    Read whole before the store begins, into an unnamed temporary file (a line per customer),
    then streamed from it: the store's write transaction must not wait on a read of its own
    (on SQLite every transaction begins IMMEDIATE, and a second one in the same thread would
    wait for the first's lock until its timeout)."""
    spool = tempfile.TemporaryFile("w+", encoding="ascii")  # noqa: SIM115 (_spooled closes it)
    try:
        with sessions() as session:
            query = wrote_since(sender, since).execution_options(yield_per=READ_CHUNK)
            for customer in session.scalars(query):
                spool.write(f"{customer}\n")
        spool.seek(0)
    except BaseException:
        spool.close()
        raise
    return _spooled(spool, report)


def _spooled(spool: IO[str], report: RecipientReport) -> Iterator[Recipient]:
    with spool:
        for line, customer in enumerate(spool, start=1):
            report.valid += 1
            yield Recipient(phone=customer.rstrip("\n"), ref=None, ref1=None, ref2=None, line=line)
