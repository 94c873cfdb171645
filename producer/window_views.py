"""What `stickerq window show` and `window stats` (GET /windows/...) read from the window
ledger: a customer's windows with each business number, and per business number how many
customers are in their window now and how many of those windows close within the hour.

Neither reads the whole table. The business numbers are found by a loose index scan
(`ledger_senders`); a customer's windows are one primary-key probe per business number; a
business number's counts are one range of the (sender, last_inbound_at) index, the windows
open now: a statement per business number, so each stays one range however many there are.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from stickerq.db import open_sessions
from stickerq.errors import StickerqError, excerpt
from stickerq.masking import mask_phone
from stickerq.models import CustomerWindow, utcnow
from stickerq.producer.phones import InvalidPhone, check_region, kaleyra_number, normalise_phone
from stickerq.settings import Settings
from stickerq.window_ledger import (
    WINDOW,
    WindowState,
    customer_windows,
    ledger_senders,
    open_condition,
)

CLOSING_WITHIN = timedelta(hours=1)  # `stats`: windows that end within this long


class WindowQueryError(StickerqError):
    """A number that cannot be looked up as given."""


@dataclass(frozen=True, slots=True, repr=False)
class CustomerWindows:
    """A customer's windows, latest message first, as they stand at `now`."""

    customer: str  # E.164
    now: datetime
    windows: list[WindowState]

    def __repr__(self) -> str:  # a phone number is personal data: keep it out of logs
        return f"CustomerWindows(customer={mask_phone(self.customer)!r}, {len(self.windows)})"


@dataclass(frozen=True, slots=True)
class SenderWindows:
    """One business number's customers in their window at the stats' `now`."""

    sender: str
    open_now: int
    closing_within_hour: int  # of those open now, windows that end within CLOSING_WITHIN


@dataclass(frozen=True, slots=True)
class WindowStats:
    """Windows open now per business number; the totals count a customer once per
    business number they wrote to."""

    now: datetime
    margin_seconds: float
    senders: list[SenderWindows]

    @property
    def open_now(self) -> int:
        return sum(s.open_now for s in self.senders)

    @property
    def closing_within_hour(self) -> int:
        return sum(s.closing_within_hour for s in self.senders)


def show_windows(
    settings: Settings,
    number: str,
    *,
    sender: str | None = None,
    now: datetime | None = None,
    sessions: sessionmaker[Session] | None = None,
) -> CustomerWindows:
    """The customer's windows with every business number in the ledger, or with `sender`."""
    customer = _normalised(number, settings, "the customer's number")
    margin = settings.window_margin_seconds
    with open_sessions(settings.database_url, sessions) as factory, factory() as session:
        senders = [_normalised(sender, settings, "--from")] if sender else ledger_senders(session)
        windows = [w for s in senders for w in customer_windows(session, customer, margin, s)]
    windows.sort(key=lambda w: w.last_inbound_at, reverse=True)
    return CustomerWindows(customer, now or utcnow(), windows)


def window_stats(
    settings: Settings,
    *,
    sender: str | None = None,
    now: datetime | None = None,
    sessions: sessionmaker[Session] | None = None,
) -> WindowStats:
    """Per business number (every one in the ledger, or `sender`), the customers whose
    window is open now and those whose window closes within CLOSING_WITHIN."""
    now = now or utcnow()
    margin = settings.window_margin_seconds
    with open_sessions(settings.database_url, sessions) as factory, factory() as session:
        senders = [_normalised(sender, settings, "--from")] if sender else ledger_senders(session)
        counted = [_counts(session, s, now, margin) for s in senders]
    return WindowStats(now, margin, counted)


def open_counts(sender: str, now: datetime, margin_seconds: float) -> Any:
    """The SELECT of (windows open at `now`, those of them that end within CLOSING_WITHIN) of
    one business number: a range of the (sender, last_inbound_at) index."""
    # A window ends at last inbound + WINDOW - margin: it ends by now + CLOSING_WITHIN when the
    # message came at or before this.
    closes_by = now + CLOSING_WITHIN - WINDOW + timedelta(seconds=margin_seconds)
    return select(
        func.count(),
        func.count().filter(CustomerWindow.last_inbound_at <= closes_by),
    ).where(CustomerWindow.sender == sender, open_condition(now, margin_seconds))


def _counts(session: Session, sender: str, now: datetime, margin: float) -> SenderWindows:
    open_now, closing = session.execute(open_counts(sender, now, margin)).one()
    return SenderWindows(sender, int(open_now), int(closing))


def _normalised(number: str, settings: Settings, what: str) -> str:
    """E.164; digits without a + are read with STICKERQ_DEFAULT_REGION, or without one as
    Kaleyra writes them (the country code first)."""
    region = check_region(settings.default_region)
    try:
        return normalise_phone(number, region) if region else kaleyra_number(number)
    except InvalidPhone as exc:
        raise WindowQueryError(
            f"{what} {excerpt(number)!r} is not a phone number: {exc}; give it in E.164, such "
            "as +919812345678"
        ) from None
