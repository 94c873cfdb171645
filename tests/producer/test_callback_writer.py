"""The callback writer on a real database (SQLite and PostgreSQL): a request whose values the
database refuses ends at once in CallbacksRefused naming the culprit (not a wait that ends in
a 503), nothing of it is written, and the requests beside it in the batch are."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from stickerq.db import open_sessions
from stickerq.models import UnknownCallback, utcnow
from stickerq.producer.callback_payloads import StatusCallback
from stickerq.producer.callback_writer import CallbacksRefused, CallbackWriter
from stickerq.states import MessageStatus
from tests.producer.test_callbacks import status_of, store_sent_messages

TIMEOUT = 10.0


@pytest.fixture
def writer(sessions: sessionmaker[Session]) -> Iterator[CallbackWriter]:
    store_sent_messages(sessions)
    writer = CallbackWriter(sessions)
    yield writer
    writer.close()


def status(message_id: str, status: str, **fields: str) -> StatusCallback:
    return StatusCallback(message_id, status, at=utcnow(), **fields)


async def write_both(writer: CallbackWriter, bad: list[StatusCallback]) -> BaseException | None:
    good = writer.write([status("M2", "read")], TIMEOUT)
    outcome, _ = await asyncio.gather(writer.write(bad, TIMEOUT), good, return_exceptions=True)
    return outcome  # type: ignore[return-value]


def test_a_refused_request_names_its_callback_and_the_rest_of_the_batch_is_written(
    writer: CallbackWriter, sessions: sessionmaker[Session]
) -> None:
    """A lone surrogate (which parsing refuses; here it gets past) fails on every driver."""
    bad = [status("M0", "delivered"), status("NOT-OURS", "read", ref="crm\ud800")]
    refused = asyncio.run(write_both(writer, bad))
    assert isinstance(refused, CallbacksRefused), refused
    assert refused.indexes == [1]
    assert "UnicodeEncodeError" in str(refused) and "callback(s) 1 of this request" in str(refused)
    assert status_of(sessions, "M0").status == MessageStatus.SENT  # nothing of that request
    assert status_of(sessions, "M2").status == MessageStatus.READ  # the other one is written
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(UnknownCallback)) == 0


def test_a_nul_is_refused_by_postgresql_at_once_not_tried_until_the_timeout(
    pg_database: str,
) -> None:
    with open_sessions(pg_database) as sessions:
        store_sent_messages(sessions)
        writer = CallbackWriter(sessions)
        try:
            failed = status("M1", "failed", error_detail="Undeliverable\x00")
            refused = asyncio.run(write_both(writer, [failed]))
        finally:
            writer.close()
        assert isinstance(refused, CallbacksRefused), refused
        assert refused.indexes == [0]
        assert "DataError" in str(refused)
        assert status_of(sessions, "M1").status == MessageStatus.SENT
        assert status_of(sessions, "M2").status == MessageStatus.READ
