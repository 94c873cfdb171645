"""A status time that cannot be true (before the message was sent, more than 5 minutes after
the callback arrived) is recorded as the time received, and counted; on SQLite and PostgreSQL,
for callbacks of known messages and for early ones kept until their message appears."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from stickerq.models import Message, UnknownCallback, utcnow
from stickerq.producer.callback_payloads import StatusCallback, parse_callback
from stickerq.producer.callback_times import BEFORE_SENT, IN_FUTURE, doubt
from stickerq.producer.callbacks import apply_callbacks
from stickerq.producer.unknown_callbacks import apply_unknown
from stickerq.states import MessageStatus
from tests.producer.test_callbacks import callback, status_of, store_sent_messages

YEAR_ONE = -62_135_596_800  # 0001-01-01T00:00:00Z in epoch seconds
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@pytest.fixture
def sent_messages(sessions: sessionmaker[Session]) -> int:
    return store_sent_messages(sessions)


def test_doubt_believes_times_between_the_sent_second_and_five_minutes_after_arrival() -> None:
    sent = datetime(2026, 12, 7, 10, 0, 0, 700_000, tzinfo=UTC)
    received = sent + timedelta(minutes=1)
    assert doubt(sent.replace(microsecond=0), received, sent) is None  # Meta's whole second
    assert doubt(received + timedelta(minutes=5), received, sent) is None
    assert doubt(sent - timedelta(seconds=1), received, sent) == BEFORE_SENT
    assert doubt(EPOCH, received, sent) == BEFORE_SENT
    assert doubt(received + timedelta(minutes=5, seconds=1), received, sent) == IN_FUTURE
    assert doubt(EPOCH, received, None) is None  # no message known


def test_delivered_at_0_and_read_of_year_1_are_recorded_as_received(
    sessions: sessionmaker[Session], sent_messages: int
) -> None:
    received = utcnow()
    batch = [
        parse_callback(callback("M0", "delivered", 0), received),
        parse_callback(callback("M0", "read", YEAR_ONE), received),
        parse_callback(callback("M1", "read", int(received.timestamp()) + 86_400), received),
        parse_callback(callback("M2", "delivered", int(received.timestamp()) - 60), received),
    ]
    with sessions.begin() as session:
        applied = apply_callbacks(session, batch)
    assert applied.times_replaced == {BEFORE_SENT: 2, IN_FUTURE: 1}
    m0, m1, m2 = (status_of(sessions, f"M{n}") for n in range(3))
    assert (m0.status, m0.delivered_at, m0.read_at) == (MessageStatus.READ, received, received)
    assert (m1.delivered_at, m1.read_at) == (received, received)
    assert m2.delivered_at == received.replace(microsecond=0) - timedelta(seconds=60)


def test_an_early_callback_keeps_its_arrival_time_for_when_its_message_appears(
    sessions: sessionmaker[Session], sent_messages: int
) -> None:
    """Kept before its message_id was written, a callback cannot be judged against sent_at:
    it is, once applied, against the time it arrived, not the time it is applied."""
    arrived = utcnow() - timedelta(minutes=3)
    early = [
        parse_callback(callback("EARLY", "delivered", 0), arrived),
        parse_callback(callback("EARLY", "read", int(arrived.timestamp()) + 86_400), arrived),
    ]
    with sessions.begin() as session:
        assert apply_callbacks(session, early).times_replaced == {IN_FUTURE: 1}
    with sessions() as session:
        kept = {row.status: row for row in session.scalars(select(UnknownCallback))}
    assert kept["delivered"].occurred_at == EPOCH  # judged once its message is known
    assert (kept["read"].occurred_at, kept["read"].received_at) == (arrived, arrived)
    with sessions.begin() as session:
        session.execute(
            update(Message)
            .where(Message.message_id == "M0")
            .values(message_id="EARLY", sent_at=arrived - timedelta(seconds=2))
        )
    with sessions.begin() as session:
        applied = apply_unknown(session, since=arrived - timedelta(minutes=1))
    assert applied.times_replaced == {BEFORE_SENT: 1}
    message = status_of(sessions, "EARLY")
    assert (message.status, message.delivered_at, message.read_at) == (
        MessageStatus.READ,
        arrived,
        arrived,
    )


def test_without_sent_at_the_time_the_message_was_stored_is_the_floor(
    sessions: sessionmaker[Session], sent_messages: int
) -> None:
    with sessions.begin() as session:
        session.execute(update(Message).values(sent_at=None))
    received = utcnow()
    with sessions.begin() as session:
        unsent = StatusCallback("M0", "delivered", at=EPOCH, received_at=received)
        applied = apply_callbacks(session, [unsent])
    assert applied.times_replaced == {BEFORE_SENT: 1}
    assert status_of(sessions, "M0").delivered_at == received
