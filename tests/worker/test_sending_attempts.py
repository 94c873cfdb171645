"""A WA202 send is kept on its message's row, with no `attempts` row of its own
(stickerq/sending_attempts.py): the worker's result write, the history that reads it back
whole, and the requeue that writes it out before the message goes again; both backends."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from stickerq.message_status import MessageMove, move_messages
from stickerq.models import Attempt, Message, utcnow
from stickerq.producer.failures import AttemptView, histories
from stickerq.producer.requeue import requeue
from stickerq.sending_attempts import write_out
from stickerq.settings import Settings
from stickerq.states import MessageStatus
from stickerq.worker.results import AttemptRecord, MessageResult, write_results
from tests.conftest import make_settings
from tests.worker.test_claims import claim_in_own_session, stored_campaign

HTTP = {"WA202": 202, "WA200": 200, "WA500": 500}
ACTION = {"WA202": "sent", "WA200": "sent", "WA500": "retry"}


def answered(first_number: int, started: datetime, *codes: str) -> list[AttemptRecord]:
    return [
        AttemptRecord(
            number=first_number + n,
            started_at=started + timedelta(seconds=n),
            latency_ms=80.5 + n,
            http_status=HTTP[code],
            code=code,
            action=ACTION[code],
            detail="WA500 answered" if code == "WA500" else None,
        )
        for n, code in enumerate(codes)
    ]


def sent(pk: int, records: list[AttemptRecord], before: int = 0) -> MessageResult:
    return MessageResult(
        pk=pk,
        status=MessageStatus.SENT,
        attempts=records,
        total_attempts=before + len(records),
        delayed_retries=0,
        message_id=f"mid-{pk}-{before}",
        http_status=records[-1].http_status,
    )


def rows_of(sessions: sessionmaker[Session], pk: int) -> list[tuple[int, str | None, str]]:
    with sessions() as session:
        query = select(Attempt.number, Attempt.code, Attempt.action).where(Attempt.message_pk == pk)
        return [tuple(row) for row in session.execute(query.order_by(Attempt.number))]


def history(sessions: sessionmaker[Session], pk: int) -> list[AttemptView]:
    """As `messages show` reads them."""
    with sessions() as session:
        (message,) = histories(session, Message.id == pk)
        return message.attempts


def seen(
    sessions: sessionmaker[Session], pk: int
) -> list[tuple[int, str | None, str, int | None, float | None]]:
    return [
        (a.number, a.code, a.action, a.http_status, a.latency_ms) for a in history(sessions, pk)
    ]


def test_a_wa202_send_has_no_attempts_row_and_its_history_reads_it_from_the_message(
    sessions: sessionmaker[Session], database_url: str
) -> None:
    campaign_id, ids = stored_campaign(sessions, 3)
    first, retried, wa200 = ids
    claim_in_own_session(sessions, campaign_id, ids)
    started = utcnow()
    with sessions.begin() as session:
        write_results(
            session,
            "T1",
            [
                sent(first, answered(1, started, "WA202")),
                sent(retried, answered(1, started, "WA500", "WA202")),
                sent(wa200, answered(1, started, "WA200")),
            ],
        )

    assert rows_of(sessions, first) == []
    assert rows_of(sessions, retried) == [(1, "WA500", "retry")]
    assert rows_of(sessions, wa200) == [(1, "WA200", "sent")]  # not the contract's accept code
    assert seen(sessions, first) == [(1, "WA202", "sent", 202, 80.5)]
    assert seen(sessions, retried) == [
        (1, "WA500", "retry", 500, 80.5),
        (2, "WA202", "sent", 202, 81.5),
    ]
    assert seen(sessions, wa200) == [(1, "WA200", "sent", 200, 80.5)]
    sending = history(sessions, retried)[1]
    with sessions() as session:
        message = session.get(Message, retried)
        assert message is not None
        assert message.sent_at == started + timedelta(seconds=1) == sending.started_at
        assert message.sent_latency_ms == 81.5
        assert (message.claimed_at, message.claim_token, message.leaving_claim_token) == (None,) * 3


def test_a_send_written_before_0021_with_its_own_row_is_read_once(
    sessions: sessionmaker[Session],
) -> None:
    campaign_id, (pk,) = stored_campaign(sessions, 1)
    claim_in_own_session(sessions, campaign_id, [pk])
    records = answered(1, utcnow(), "WA202")
    with sessions.begin() as session:
        write_results(session, "T1", [sent(pk, records)], before_cuts=True)  # as 0020 wrote
    assert rows_of(sessions, pk) == [(1, "WA202", "sent")]
    assert seen(sessions, pk) == [(1, "WA202", "sent", 202, 80.5)]
    with sessions.begin() as session:
        write_out(session, Message.id == pk)
    assert rows_of(sessions, pk) == [(1, "WA202", "sent")]  # it had its row already


def test_a_requeued_sent_message_keeps_its_first_send_when_it_goes_again(
    sessions: sessionmaker[Session], database_url: str, redis_prefix: str
) -> None:
    campaign_id, (pk,) = stored_campaign(sessions, 1)
    claim_in_own_session(sessions, campaign_id, [pk])
    first_send = utcnow() - timedelta(minutes=5)
    with sessions.begin() as session:
        write_results(session, "T1", [sent(pk, answered(1, first_send, "WA202"))])
        # Meta fails it after all (a `failed` status callback): failed messages can go again.
        session.execute(move_messages(MessageMove.CALLBACK_FAILED, Message.id == pk))
    settings: Settings = make_settings(database_url, redis_prefix, "http://127.0.0.1:9")

    assert requeue(settings, campaign_id, "failed", actor="tester").requeued == 1
    assert rows_of(sessions, pk) == [(1, "WA202", "sent")]  # written out before the move
    with sessions.begin() as session:
        write_out(session, Message.id == pk)
    assert rows_of(sessions, pk) == [(1, "WA202", "sent")]  # only once
    claim_in_own_session(sessions, campaign_id, [pk], token="T2")
    with sessions.begin() as session:
        write_results(session, "T2", [sent(pk, answered(2, utcnow(), "WA202"), before=1)])

    attempts = history(sessions, pk)
    assert [(a.number, a.code, a.action) for a in attempts] == [
        (1, "WA202", "sent"),
        (2, "WA202", "sent"),
    ]
    assert attempts[0].started_at == first_send
    assert rows_of(sessions, pk) == [(1, "WA202", "sent")]  # the second stays on the row
