"""Campaign counters stay equal to a full count of the messages, whatever statement changes
them (claims, results, releases, sweeps, requeues, cancels, callbacks, deletes), on both
backends, and a rolled-back change takes its counts back with it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import delete, update
from sqlalchemy.orm import Session, sessionmaker

from stickerq.campaign_status import complete_if_settled
from stickerq.counts import campaign_counts, counted_from_rows
from stickerq.models import Campaign, Message, utcnow
from stickerq.producer.callback_payloads import StatusCallback
from stickerq.producer.callbacks import apply_callback
from stickerq.states import MessageStatus
from stickerq.worker.claims import claim, release
from stickerq.worker.due_retries import take_due_retries
from stickerq.worker.results import AttemptRecord, MessageResult, write_results
from tests.worker.test_claims import stored_campaign


def assert_exact(sessions: sessionmaker[Session], campaign_id: int) -> dict[str, int]:
    with sessions() as session:
        kept, counted = (
            campaign_counts(session, campaign_id),
            counted_from_rows(session, campaign_id),
        )
    assert kept == counted
    return kept.by_status


def answered(pk: int, status: MessageStatus, **fields: object) -> MessageResult:
    attempt = AttemptRecord(1, utcnow(), 50.0, 202, None, "sent", None)
    return MessageResult(pk, status, [attempt], 1, 0, **fields)  # type: ignore[arg-type]


def test_counters_follow_every_change_to_messages(sessions: sessionmaker[Session]) -> None:
    campaign_id, ids = stored_campaign(sessions, 60)
    assert assert_exact(sessions, campaign_id) == {"pending": 60}

    with sessions.begin() as session:
        claimed = [m.pk for m in claim(session, campaign_id, ids[:40], "T1")]
    assert assert_exact(sessions, campaign_id) == {"pending": 20, "sending": 40}

    due = utcnow() - timedelta(seconds=1)
    with sessions.begin() as session:
        write_results(
            session,
            "T1",
            [answered(pk, MessageStatus.SENT, message_id=f"m{pk}") for pk in claimed[:20]]
            + [answered(pk, MessageStatus.FAILED, code="WA400") for pk in claimed[20:25]]
            + [
                answered(pk, MessageStatus.PENDING, code="WA500", next_attempt_at=due)
                for pk in claimed[25:30]
            ],
        )
        release(session, campaign_id, "T1", claimed[30:35])
    with sessions() as session:
        counts = campaign_counts(session, campaign_id)
    assert counts.by_code == {"WA400": 5, "WA500": 5}
    assert (counts.retries_waiting, counts.attempts, counts.attempted) == (5, 30, 30)
    assert_exact(sessions, campaign_id)

    with sessions.begin() as session:
        take_due_retries(session)
        # A sweeper settling a dead claim: the last five of T1 become unknown.
        session.execute(
            update(Message).where(Message.claim_token == "T1", Message.status == "sending")
            .values(status=MessageStatus.UNKNOWN)
        )  # fmt: skip
        apply_callback(session, StatusCallback(f"m{claimed[0]}", "delivered", utcnow()))
    assert assert_exact(sessions, campaign_id)["unknown"] == 5

    # A requeue, then a cancel of what is pending.
    with sessions.begin() as session:
        session.execute(
            update(Message).where(Message.status.in_(["failed", "unknown"]))
            .values(status=MessageStatus.PENDING, last_error_code=None)
        )  # fmt: skip
        session.execute(
            update(Message).where(Message.campaign_id == campaign_id, Message.status == "pending")
            .values(status=MessageStatus.CANCELLED)
        )  # fmt: skip
        session.execute(update(Campaign).values(status="running"))
        complete_if_settled(session, campaign_id)
    assert assert_exact(sessions, campaign_id) == {"sent": 19, "delivered": 1, "cancelled": 40}
    with sessions() as session:
        assert session.get(Campaign, campaign_id).status == "completed"  # type: ignore[union-attr]


def test_a_rolled_back_change_leaves_the_counters_as_they_were(
    sessions: sessionmaker[Session],
) -> None:
    campaign_id, ids = stored_campaign(sessions, 10)
    with pytest.raises(RuntimeError), sessions.begin() as session:
        claim(session, campaign_id, ids, "T1")
        raise RuntimeError("the worker dies before commit")
    assert assert_exact(sessions, campaign_id) == {"pending": 10}


def test_deleting_messages_or_a_whole_campaign_keeps_counters_exact(
    sessions: sessionmaker[Session],
) -> None:
    campaign_id, ids = stored_campaign(sessions, 10)
    other_id, _ = stored_campaign(sessions, 5)
    with sessions.begin() as session:
        session.execute(delete(Message).where(Message.id.in_(ids[:3])))
    assert assert_exact(sessions, campaign_id) == {"pending": 7}
    with sessions.begin() as session:
        session.execute(delete(Campaign).where(Campaign.id == campaign_id))
    assert assert_exact(sessions, campaign_id) == {}
    assert assert_exact(sessions, other_id) == {"pending": 5}
