"""Claims, results and due retries on both backends: the database is what makes
at-least-once delivery safe."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import redis
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from stickerq.campaign_status import complete_if_settled
from stickerq.models import Campaign, Message, utcnow
from stickerq.producer.recipients import RecipientReport, parse_recipient_list
from stickerq.producer.spec import validate_spec
from stickerq.producer.store import store_campaign
from stickerq.queue import QUEUE, SWEEP, app, configure_celery, queued_tasks
from stickerq.states import CampaignStatus, MessageStatus
from stickerq.worker.claims import claim, release
from stickerq.worker.due_retries import take_due_retries
from stickerq.worker.leaving import record_leaving
from stickerq.worker.results import AttemptRecord, MessageResult, write_results
from stickerq.worker.sweeper import redispatch_uncovered, settle_dead_claims
from tests.conftest import make_settings


def stored_campaign(sessions: sessionmaker[Session], count: int = 200) -> tuple[int, list[int]]:
    spec, _ = validate_spec(name="claims", sender="+919000000001", sticker_id="798")
    report = RecipientReport()
    numbers = ",".join(f"+91981234{n:04d}" for n in range(count))
    campaign_id = store_campaign(
        sessions,
        spec,
        "SID",
        parse_recipient_list(numbers, None, report),
        report,
        skip_invalid=False,
        actor="tester",
    )
    with sessions() as session:
        ids = list(session.scalars(select(Message.id).where(Message.campaign_id == campaign_id)))
    return campaign_id, ids


def claim_in_own_session(
    sessions: sessionmaker[Session], campaign_id: int, ids: list[int], token: str = "T1"
) -> list[int]:
    with sessions.begin() as session:
        return [message.pk for message in claim(session, campaign_id, ids, token)]


def test_concurrent_claims_of_one_batch_never_overlap(sessions: sessionmaker[Session]) -> None:
    campaign_id, ids = stored_campaign(sessions)
    with ThreadPoolExecutor(max_workers=4) as pool:
        claimed = list(
            pool.map(lambda _: claim_in_own_session(sessions, campaign_id, ids), range(4))
        )
    flat = [pk for batch in claimed for pk in batch]
    assert sorted(flat) == sorted(ids)  # every message claimed once, by exactly one claimer
    with sessions() as session:
        assert session.get(Campaign, campaign_id).status == CampaignStatus.RUNNING


def test_second_claim_of_the_same_batch_claims_nothing(sessions: sessionmaker[Session]) -> None:
    campaign_id, ids = stored_campaign(sessions, 10)
    assert len(claim_in_own_session(sessions, campaign_id, ids)) == 10
    assert claim_in_own_session(sessions, campaign_id, ids) == []


def test_messages_not_yet_due_or_of_a_paused_campaign_are_not_claimed(
    sessions: sessionmaker[Session],
) -> None:
    campaign_id, ids = stored_campaign(sessions, 4)
    with sessions.begin() as session:
        session.execute(
            update(Message)
            .where(Message.id == ids[0])
            .values(next_attempt_at=utcnow() + timedelta(minutes=5))
        )
    assert sorted(claim_in_own_session(sessions, campaign_id, ids)) == ids[1:]

    other_id, other_ids = stored_campaign(sessions, 3)
    with sessions.begin() as session:
        session.execute(
            update(Campaign).where(Campaign.id == other_id).values(status=CampaignStatus.PAUSED)
        )
    assert claim_in_own_session(sessions, other_id, other_ids) == []


def test_results_are_written_in_bulk_and_the_campaign_completes(
    sessions: sessionmaker[Session],
) -> None:
    campaign_id, ids = stored_campaign(sessions, 3)
    claim_in_own_session(sessions, campaign_id, ids)
    now = utcnow()
    record = AttemptRecord(1, now, 12.5, 202, "WA202", "sent", None)
    results = [
        MessageResult(ids[0], MessageStatus.SENT, [record], 1, 0, message_id="A1", http_status=202),
        MessageResult(ids[1], MessageStatus.FAILED, [record], 1, 0, code="WA400"),
    ]
    with sessions.begin() as session:
        write_results(session, "T1", results)
        release(session, campaign_id, "T1", [ids[2]])
        assert not complete_if_settled(session, campaign_id)  # ids[2] is pending again
    with sessions() as session:
        rows = {m.id: m for m in session.scalars(select(Message).where(Message.id.in_(ids)))}
    assert (rows[ids[0]].status, rows[ids[0]].message_id, rows[ids[0]].sent_at) == (
        MessageStatus.SENT,
        "A1",
        now,
    )
    assert (rows[ids[1]].status, rows[ids[1]].last_error_code) == (MessageStatus.FAILED, "WA400")
    assert rows[ids[2]].status == MessageStatus.PENDING

    claim_in_own_session(sessions, campaign_id, [ids[2]])
    with sessions.begin() as session:
        write_results(session, "T1", [MessageResult(ids[2], MessageStatus.UNKNOWN, [record], 1, 0)])
        assert complete_if_settled(session, campaign_id)


def test_a_result_clears_the_claim_tokens_except_on_an_unknown_message(
    sessions: sessionmaker[Session],
) -> None:
    """A settled message keeps no claim (66 bytes a row): only an `unknown` one may still be
    written under it, by its worker's late word after the sweeper's guess."""
    campaign_id, ids = stored_campaign(sessions, 4)
    claim_in_own_session(sessions, campaign_id, ids)
    with sessions.begin() as session:
        assert record_leaving(session.connection(), "T1", ids) == set(ids)
    record = AttemptRecord(1, utcnow(), 12.5, 202, "WA202", "sent", None)
    retry_at = utcnow() + timedelta(minutes=5)
    results = [
        MessageResult(ids[0], MessageStatus.SENT, [record], 1, 0, message_id="A1"),
        MessageResult(ids[1], MessageStatus.FAILED, [record], 1, 0, code="WA400"),
        MessageResult(ids[2], MessageStatus.PENDING, [record], 1, 1, next_attempt_at=retry_at),
        MessageResult(ids[3], MessageStatus.UNKNOWN, [record], 1, 0),
    ]
    with sessions.begin() as session:
        write_results(session, "T1", results)
    with sessions() as session:
        tokens = {
            m.id: (m.status, m.claim_token, m.leaving_claim_token)
            for m in session.scalars(select(Message).where(Message.id.in_(ids)))
        }
    assert tokens == {
        ids[0]: (MessageStatus.SENT, None, None),
        ids[1]: (MessageStatus.FAILED, None, None),
        ids[2]: (MessageStatus.PENDING, None, None),
        ids[3]: (MessageStatus.UNKNOWN, "T1", "T1"),
    }
    # The worker's word on the unknown one still lands under its claim, and then clears it.
    sent = MessageResult(ids[3], MessageStatus.SENT, [record], 2, 0, message_id="A4")
    with sessions.begin() as session:
        write_results(session, "T1", [sent])
    with sessions() as session:
        last = session.get(Message, ids[3])
        assert last is not None
        assert (last.status, last.claim_token, last.leaving_claim_token) == ("sent", None, None)


def test_a_due_retry_is_handed_to_one_dispatcher_only(sessions: sessionmaker[Session]) -> None:
    campaign_id, ids = stored_campaign(sessions, 5)
    with sessions.begin() as session:
        session.execute(
            update(Message)
            .where(Message.id.in_(ids[:2]))
            .values(next_attempt_at=utcnow() - timedelta(seconds=1))
        )
    with sessions.begin() as session:
        first = take_due_retries(session)
    with sessions.begin() as session:
        second = take_due_retries(session)
    assert first == [(campaign_id, ids[0]), (campaign_id, ids[1])]
    assert second == []


def test_leaving_is_recorded_only_while_the_claim_is_ours(sessions: sessionmaker[Session]) -> None:
    campaign_id, ids = stored_campaign(sessions, count=10)
    claimed = claim_in_own_session(sessions, campaign_id, ids, token="T1")
    with sessions.begin() as session:
        assert record_leaving(session.connection(), "T1", claimed[:3]) == set(claimed[:3])
        assert record_leaving(session.connection(), "T-other", claimed[3:5]) == set()
    # A sweeper took the claim for dead and settled the rest: they must not be sent.
    with sessions.begin() as session:
        session.execute(
            update(Message)
            .where(Message.id.in_(claimed[3:]))
            .values(status=MessageStatus.PENDING, claim_token=None)
        )
    with sessions.begin() as session:
        assert record_leaving(session.connection(), "T1", claimed[3:]) == set()
        marked = session.scalars(
            select(Message.id).where(Message.leaving_claim_token == "T1")
        ).all()
    assert sorted(marked) == sorted(claimed[:3])


def test_a_dead_claim_whose_redis_record_was_lost_is_settled_by_the_database_evidence(
    sessions: sessionmaker[Session], redis_url: str, redis_prefix: str
) -> None:
    """No heartbeat and no record of sends in Redis (a host died with its Redis): only the
    messages whose leaving was recorded may have left; the others go back to `pending`."""
    campaign_id, ids = stored_campaign(sessions, count=10)
    claimed = claim_in_own_session(sessions, campaign_id, ids, token="T1")
    with sessions.begin() as session:
        record_leaving(session.connection(), "T1", claimed[:4])
    report = settle_dead_claims(
        sessions, redis.Redis.from_url(redis_url), redis_prefix, grace_seconds=0
    )
    assert (report.unknown, report.pending) == (4, 6)
    with sessions() as session:
        statuses = {
            pk: status for pk, status in session.execute(select(Message.id, Message.status))
        }
    assert {pk for pk, status in statuses.items() if status == MessageStatus.UNKNOWN} == set(
        claimed[:4]
    )


def test_pending_messages_are_redispatched_while_beat_tasks_wait_but_not_while_a_batch_does(
    sessions: sessionmaker[Session], database_url: str, redis_url: str, redis_prefix: str
) -> None:
    """Beat's periodic tasks wait beside the sweep that runs among them and cover no
    message: they must not hold back the re-dispatch of what no send_batch task covers."""
    configure_celery(make_settings(database_url, redis_prefix, "http://127.0.0.1:9"))
    client = redis.Redis.from_url(redis_url)
    stored_campaign(sessions, count=10)
    app.send_task(SWEEP, queue=QUEUE)  # what beat left queued beside this sweep

    assert redispatch_uncovered(sessions, client, redis_prefix, batch_size=4) == 10
    assert queued_tasks(client, redis_prefix) == 3  # 4 + 4 + 2

    # Those tasks now cover the pending messages: nothing more goes out.
    assert redispatch_uncovered(sessions, client, redis_prefix, batch_size=4) == 0
