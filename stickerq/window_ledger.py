"""The window ledger: who wrote to which business number, and when (docs/architecture.md,
"The window ledger").

WhatsApp delivers a sticker only inside the customer's 24-hour customer service window with
the business number, which each message the customer sends opens again. One row per (sender,
customer) keeps the latest inbound time and type, never a message's content. A 131047 status
callback says the window is shut (`closed_at`), whatever the ledger thought, until the
customer writes again. A window counts as open until `WINDOW` minus the margin after the last
inbound message: the margin (STICKERQ_WINDOW_MARGIN_SECONDS) leaves the request time to
arrive.

Writers (incoming callbacks, `stickerq window import`, status callbacks) and the claim's
reader (worker/window_check.py) meet here; both backends take the same statements.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import Select, String, and_, bindparam, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from stickerq.models import CustomerWindow, UTCDateTime

WINDOW = timedelta(hours=24)
TYPE_LENGTH = 32  # CustomerWindow.last_type


@dataclass(frozen=True, slots=True)
class Inbound:
    """One message a customer sent to a business number (both E.164): when, and its type."""

    sender: str
    customer: str
    at: datetime
    type: str | None = None


@dataclass(frozen=True, slots=True)
class WindowState:
    """One row of the ledger, read: `ends_at` is when a sticker can no longer go (the
    margin taken off); `closed_at`, a 131047 after the last inbound message."""

    sender: str
    customer: str
    last_inbound_at: datetime
    last_type: str | None
    closed_at: datetime | None
    ends_at: datetime

    def is_open(self, now: datetime) -> bool:
        return self.closed_at is None and now < self.ends_at


def window_end(last_inbound_at: datetime, margin_seconds: float) -> datetime:
    return last_inbound_at + WINDOW - timedelta(seconds=margin_seconds)


def record_inbound(session: Session, messages: Iterable[Inbound]) -> int:
    """Keep each pair's latest inbound message (a later one already kept wins); returns how
    many pairs were given. In the caller's transaction."""
    latest: dict[tuple[str, str], Inbound] = {}
    for message in messages:
        key = (message.sender, message.customer)
        kept = latest.get(key)
        if kept is None or message.at > kept.at:
            latest[key] = message
    if not latest:
        return 0
    newest = list(latest.values())
    types = [m.type[:TYPE_LENGTH] if m.type else None for m in newest]
    connection = session.connection()
    if connection.dialect.name == "postgresql":  # one statement, compiled once, any batch size
        arrays = {
            "w_senders": [m.sender for m in newest],
            "w_customers": [m.customer for m in newest],
            "w_ats": [m.at for m in newest],
            "w_types": types,
        }
        connection.execute(_pg_record(), arrays)
    else:
        rows = [
            {"sender": m.sender, "customer": m.customer, "last_inbound_at": m.at, "last_type": t}
            for m, t in zip(newest, types, strict=True)
        ]
        connection.execute(_keep_latest(sqlite.insert(CustomerWindow)), rows)
    return len(latest)


def _keep_latest(statement: Any) -> Any:
    """The upsert's rule: a pair's row takes the given inbound message only if it is later."""
    return statement.on_conflict_do_update(
        index_elements=[CustomerWindow.sender, CustomerWindow.customer],
        set_={
            "last_inbound_at": statement.excluded.last_inbound_at,
            "last_type": statement.excluded.last_type,
        },
        where=CustomerWindow.__table__.c.last_inbound_at < statement.excluded.last_inbound_at,
    )


@cache
def _pg_record() -> Any:
    """INSERT ... SELECT FROM unnest(one array per column) ON CONFLICT: the ORM's executemany
    took most of the callback writer's time at 1,000 incoming callbacks a second."""
    columns: dict[str, Any] = {
        "w_senders": String(),
        "w_customers": String(),
        "w_ats": UTCDateTime(),
        "w_types": String(),
    }
    names = ["sender", "customer", "last_inbound_at", "last_type"]
    arrays = [bindparam(name, type_=ARRAY(kind)) for name, kind in columns.items()]
    incoming = func.unnest(*arrays).table_valued(*names).render_derived(name="incoming")
    statement = postgresql.insert(CustomerWindow).from_select(names, select(incoming))
    return _keep_latest(statement)


def close_windows(session: Session, pairs: Iterable[tuple[str, str, datetime]]) -> None:
    """A 131047 for (sender, customer) at a time: the window is shut unless the customer
    wrote after it. A pair the ledger does not hold is closed already."""
    rows = [{"w_sender": s, "w_customer": c, "w_at": at} for s, c, at in pairs]
    if not rows:
        return
    statement = (
        update(CustomerWindow)
        .where(
            CustomerWindow.sender == bindparam("w_sender"),
            CustomerWindow.customer == bindparam("w_customer"),
            CustomerWindow.last_inbound_at <= bindparam("w_at"),
            or_(CustomerWindow.closed_at.is_(None), CustomerWindow.closed_at < bindparam("w_at")),
        )
        .values(closed_at=bindparam("w_at"))
        .execution_options(synchronize_session=False)
    )
    session.connection().execute(statement, rows)


def windows_of(
    session: Session, sender: str, customers: Collection[str], margin_seconds: float
) -> dict[str, WindowState]:
    """The ledger's rows for these customers of one sender: one lookup by primary key."""
    if not customers:
        return {}
    if session.get_bind().dialect.name == "postgresql":  # one statement, one generic plan
        found = session.execute(
            _PG_WINDOWS, {"w_sender": sender, "w_customers": list(customers)}
        ).all()
    else:
        found = session.execute(
            _WINDOWS.where(
                CustomerWindow.sender == sender, CustomerWindow.customer.in_(list(customers))
            )
        ).all()
    return {row.customer: _state(row, margin_seconds) for row in found}


def window_of(
    session: Session, sender: str, customer: str, margin_seconds: float
) -> WindowState | None:
    return windows_of(session, sender, [customer], margin_seconds).get(customer)


def customer_windows(
    session: Session, customer: str, margin_seconds: float, sender: str | None = None
) -> list[WindowState]:
    """A customer's windows with every business number (or one), latest first."""
    query = _WINDOWS.where(CustomerWindow.customer == customer)
    if sender is not None:
        query = query.where(CustomerWindow.sender == sender)
    rows = session.execute(query.order_by(CustomerWindow.last_inbound_at.desc())).all()
    return [_state(row, margin_seconds) for row in rows]


def wrote_since(sender: str, since: datetime) -> Select[Any]:
    """The SELECT of the customers who wrote to `sender` at or after `since` (not shut by a
    131047 since), by the (sender, last_inbound_at) index."""
    return select(CustomerWindow.customer).where(
        CustomerWindow.sender == sender,
        CustomerWindow.last_inbound_at >= since,
        or_(
            CustomerWindow.closed_at.is_(None),
            CustomerWindow.closed_at < CustomerWindow.last_inbound_at,
        ),
    )


def open_condition(now: datetime, margin_seconds: float) -> Any:
    """Open at `now`: written to within the window (less the margin), and not shut since."""
    return and_(
        CustomerWindow.last_inbound_at > now - WINDOW + timedelta(seconds=margin_seconds),
        or_(
            CustomerWindow.closed_at.is_(None),
            CustomerWindow.closed_at < CustomerWindow.last_inbound_at,
        ),
    )


def ledger_senders(session: Session) -> list[str]:
    """Every business number the ledger holds, in order: one probe of the primary key per
    number (a loose index scan), where `SELECT DISTINCT sender` would read every row."""
    first = select(func.min(CustomerWindow.sender).label("sender")).cte(
        "ledger_senders", recursive=True
    )
    following = (
        select(func.min(CustomerWindow.sender))
        .where(CustomerWindow.sender > first.c.sender)
        .scalar_subquery()
    )
    walk = first.union_all(select(following).where(first.c.sender.is_not(None)))
    return list(session.scalars(select(walk.c.sender).where(walk.c.sender.is_not(None))))


_WINDOWS = select(
    CustomerWindow.sender,
    CustomerWindow.customer,
    CustomerWindow.last_inbound_at,
    CustomerWindow.last_type,
    CustomerWindow.closed_at,
)
_PG_WINDOWS = _WINDOWS.where(
    CustomerWindow.sender == bindparam("w_sender"),
    CustomerWindow.customer == func.any(bindparam("w_customers", type_=ARRAY(String()))),
)


def _state(row: Sequence[Any], margin_seconds: float) -> WindowState:
    sender, customer, last_inbound_at, last_type, closed_at = row
    shut = closed_at if closed_at is not None and closed_at >= last_inbound_at else None
    return WindowState(
        sender=sender,
        customer=customer,
        last_inbound_at=last_inbound_at,
        last_type=last_type,
        closed_at=shut,
        ends_at=window_end(last_inbound_at, margin_seconds),
    )
