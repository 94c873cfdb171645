"""`window show` and `window stats` on both backends at a fixed "now": a customer's windows
with each business number (open, ending, shut by a 131047), and per business number the
customers in their window now and those whose window ends within the hour; the counts are a
range of the (sender, last_inbound_at) index on PostgreSQL, not a read of the table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session, sessionmaker

from stickerq.db import make_engine, make_session_factory
from stickerq.producer.window_views import (
    WindowQueryError,
    open_counts,
    show_windows,
    window_stats,
)
from stickerq.settings import Settings
from stickerq.window_ledger import Inbound, close_windows, ledger_senders, record_inbound
from tests.conftest import make_settings

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
A, B, C, D = (f"+9198123400{n:02d}" for n in range(1, 5))  # customers
S1, S2, S3 = "+919000000001", "+919000000002", "+919000000003"  # business numbers
MARGIN = 60.0
NINE_MINUTES = timedelta(minutes=9)


@pytest.fixture
def settings(database_url: str, redis_prefix: str) -> Settings:
    return make_settings(
        database_url, redis_prefix, "http://127.0.0.1:9", window_margin_seconds=MARGIN
    )


def wrote(sessions: sessionmaker[Session], *rows: tuple[str, str, timedelta, str | None]) -> None:
    """Each (business number, customer) pair's last message, that long before NOW."""
    with sessions.begin() as session:
        record_inbound(session, [Inbound(s, c, NOW - ago, kind) for s, c, ago, kind in rows])


@pytest.fixture
def ledger(sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    """S1: A wrote an hour ago, B 23.5 h ago (ends within the hour), C 23 h 59.5 min ago
    (inside 24 h, but not the margin), D 2 days ago; A shut out by a 131047 with S2 since
    its last message; S3: B a minute ago."""
    hour = timedelta(hours=1)
    wrote(
        sessions,
        (S1, A, hour, "text"),
        (S1, B, 23.5 * hour, "image"),
        (S1, C, 24 * hour - timedelta(seconds=30), None),
        (S1, D, 48 * hour, "text"),
        (S2, A, 3 * hour, "sticker"),
        (S3, B, timedelta(minutes=1), "text"),
    )
    with sessions.begin() as session:
        close_windows(session, [(S2, A, NOW - 2 * hour)])
    return sessions


def test_show_lists_a_customers_windows_latest_first_open_or_not(
    settings: Settings, ledger: sessionmaker[Session]
) -> None:
    shown = show_windows(settings, "+91 98123-40001", now=NOW, sessions=ledger)

    assert shown.customer == A and shown.now == NOW
    assert [(w.sender, w.last_type, w.is_open(NOW)) for w in shown.windows] == [
        (S1, "text", True),
        (S2, "sticker", False),  # a 131047 shut it after the last message
    ]
    first, shut = shown.windows
    assert first.ends_at == NOW - timedelta(hours=1) + timedelta(hours=24, seconds=-MARGIN)
    assert (first.closed_at, shut.closed_at) == (None, NOW - timedelta(hours=2))
    assert A not in repr(shown)

    only = show_windows(settings, A, sender="919000000002", now=NOW, sessions=ledger)
    assert [w.sender for w in only.windows] == [S2]  # Kaleyra's digits taken for --from
    assert show_windows(settings, "+919812349999", now=NOW, sessions=ledger).windows == []


def test_a_customer_who_writes_again_reopens_the_window_a_131047_shut(
    settings: Settings, ledger: sessionmaker[Session]
) -> None:
    wrote(ledger, (S2, A, timedelta(minutes=5), "text"))
    (reopened,) = show_windows(settings, A, sender=S2, now=NOW, sessions=ledger).windows
    assert reopened.is_open(NOW) and reopened.closed_at is None


def test_stats_count_open_windows_and_those_closing_within_the_hour_per_sender(
    settings: Settings, ledger: sessionmaker[Session]
) -> None:
    stats = window_stats(settings, now=NOW, sessions=ledger)

    assert [(s.sender, s.open_now, s.closing_within_hour) for s in stats.senders] == [
        (S1, 2, 1),  # A and B open, B's window ends within the hour; C is within the margin
        (S2, 0, 0),  # shut by a 131047
        (S3, 1, 0),
    ]
    assert (stats.open_now, stats.closing_within_hour, stats.margin_seconds) == (3, 1, MARGIN)
    one = window_stats(settings, sender=S1, now=NOW, sessions=ledger)
    assert [(s.sender, s.open_now) for s in one.senders] == [(S1, 2)]
    later = window_stats(settings, now=NOW + timedelta(minutes=31), sessions=ledger)
    assert [s.open_now for s in later.senders] == [1, 0, 1]  # B's window with S1 ended


def test_an_empty_ledger_has_no_senders(
    settings: Settings, sessions: sessionmaker[Session]
) -> None:
    assert window_stats(settings, now=NOW, sessions=sessions).senders == []
    with sessions() as session:
        assert ledger_senders(session) == []


@pytest.mark.parametrize("number", ["not a number", "+91123", ""])
def test_a_bad_number_is_refused_with_an_example(
    settings: Settings, sessions: sessionmaker[Session], number: str
) -> None:
    with pytest.raises(WindowQueryError, match=r"is not a phone number.*\+919812345678"):
        show_windows(settings, number, sessions=sessions)
    with pytest.raises(WindowQueryError, match="--from"):
        window_stats(settings, sender=number or "x", sessions=sessions)


def test_on_postgresql_the_counts_are_a_range_of_the_sender_time_index(
    pg_database: str, redis_prefix: str
) -> None:
    """50,000 rows over 10 senders and 31 days: one sender's open windows are a sliver of
    them, which the planner reads by the index (a sequential scan reads all of them)."""
    settings = make_settings(pg_database, redis_prefix, "http://127.0.0.1:9")
    engine = make_engine(pg_database)
    sessions = make_session_factory(engine)
    senders = [f"+9190000000{n:02d}" for n in range(10)]
    with sessions.begin() as session:
        for part in range(10):
            record_inbound(
                session,
                [
                    Inbound(senders[n % 10], f"+9198{part:02d}{n:06d}", NOW - n * NINE_MINUTES)
                    for n in range(5_000)
                ],
            )
    with engine.connect() as connection:
        connection.execute(text("ANALYZE customer_windows"))
        statement = open_counts(senders[3], NOW, MARGIN).compile(dialect=postgresql.dialect())
        plan = "\n".join(
            row[0]
            for row in connection.exec_driver_sql(
                f"EXPLAIN {statement}", statement.construct_params()
            )
        )
    assert "ix_customer_windows_sender_last_inbound_at" in plan, plan
    assert "Seq Scan" not in plan, plan
    # open: written within 24 h less a minute, every ninth minute, a tenth of them to senders[3]
    assert window_stats(settings, sender=senders[3], now=NOW, sessions=sessions).open_now == 160
    engine.dispose()
