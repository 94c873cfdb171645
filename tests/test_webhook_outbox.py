"""The webhook outbox: an event is written in the transaction of its change, only for the
endpoints that subscribe to it, and never when the change rolls back."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from stickerq.campaign_status import Move, move_campaign
from stickerq.models import WebhookEndpoint, WebhookOutboxEvent, utcnow
from stickerq.pauses import PauseRequest, record_pause, resume
from stickerq.states import CampaignStatus as S
from stickerq.states import PauseScope
from stickerq.webhook_outbox import forget_subscribers
from tests.test_campaign_status import new_campaign

SID = "HXAP16XXXXXX97IN"


def add_endpoint(
    sessions: sessionmaker[Session], events: str, account: str | None = None, disabled: bool = False
) -> int:
    with sessions.begin() as session:
        endpoint = WebhookEndpoint(
            url="https://hooks.example/x",
            secret="s" * 32,
            events=events,
            account=account,
            disabled_at=utcnow() if disabled else None,
        )
        session.add(endpoint)
        session.flush()
        endpoint_id = endpoint.id
    forget_subscribers()
    return endpoint_id


def outbox(sessions: sessionmaker[Session]) -> list[WebhookOutboxEvent]:
    with sessions() as session:
        return list(session.scalars(select(WebhookOutboxEvent).order_by(WebhookOutboxEvent.id)))


def test_a_campaign_paused_writes_its_event_in_the_same_transaction(
    sessions: sessionmaker[Session],
) -> None:
    endpoint_id = add_endpoint(sessions, "campaign.completed,campaign.paused")
    campaign_id = new_campaign(sessions, S.RUNNING)
    with sessions.begin() as session:
        assert move_campaign(session, campaign_id, Move.PAUSE, pause_reason="by hand")
    [row] = outbox(sessions)
    assert (row.endpoint_id, row.type, row.campaign_id) == (
        endpoint_id,
        "campaign.paused",
        campaign_id,
    )
    assert json.loads(row.payload) == {
        "campaign_id": campaign_id,
        "account": SID,
        "status": "paused",
        "reason": "by hand",
    }
    assert row.delivered_at is None and row.next_attempt_at <= utcnow()


def test_a_change_rolled_back_leaves_no_event(sessions: sessionmaker[Session]) -> None:
    add_endpoint(sessions, "campaign.paused")
    campaign_id = new_campaign(sessions, S.RUNNING)
    with pytest.raises(RuntimeError), sessions.begin() as session:
        assert move_campaign(session, campaign_id, Move.PAUSE)
        raise RuntimeError("the change fails after its UPDATE")
    assert outbox(sessions) == []


def test_no_event_without_a_subscriber_nor_for_a_move_that_did_not_happen(
    sessions: sessionmaker[Session],
) -> None:
    add_endpoint(sessions, "campaign.completed")  # not paused
    add_endpoint(sessions, "campaign.paused", disabled=True)
    add_endpoint(sessions, "campaign.paused", account="OTHERSID")
    campaign_id = new_campaign(sessions, S.RUNNING)
    cancelled = new_campaign(sessions, S.CANCELLED)
    with sessions.begin() as session:
        assert move_campaign(session, campaign_id, Move.PAUSE)
        assert not move_campaign(session, cancelled, Move.COMPLETE)
    assert outbox(sessions) == []


def test_each_endpoint_gets_its_row_and_the_event_id_is_shared(
    sessions: sessionmaker[Session],
) -> None:
    first = add_endpoint(sessions, "campaign.completed")
    second = add_endpoint(sessions, "campaign.completed", account=SID)
    campaign_id = new_campaign(sessions, S.RUNNING)
    with sessions.begin() as session:
        assert move_campaign(session, campaign_id, Move.COMPLETE)
    rows = outbox(sessions)
    assert sorted(row.endpoint_id for row in rows) == [first, second]
    assert len({row.event_id for row in rows}) == 1


def test_pauses_started_and_lifted_write_their_events_once(
    sessions: sessionmaker[Session],
) -> None:
    add_endpoint(sessions, "pause.started,pause.lifted")
    request = PauseRequest(PauseScope.ACCOUNT, "E110", "balance ran out")
    with sessions.begin() as session:
        record_pause(session, request, SID, "+919000000001", None)
        record_pause(session, request, SID, "+919000000001", None)  # already in force
    with sessions.begin() as session:
        assert resume(session, SID) == 1
    rows = outbox(sessions)
    assert [row.type for row in rows] == ["pause.started", "pause.lifted"]
    started = json.loads(rows[0].payload)
    assert (started["scope"], started["account"], started["code"]) == ("account", SID, "E110")
