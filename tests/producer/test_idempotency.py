"""Idempotency keys on SQLite and PostgreSQL: a campaign is never committed without its key,
and a reservation whose request died is taken over once it expires."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from stickerq.models import Campaign, IdempotencyKey, utcnow
from stickerq.producer.idempotency import (
    IdempotencyConflict,
    request_sha256,
    send_campaign_once,
    stamping_sessions,
)
from stickerq.producer.request import CampaignRequest, Timing
from stickerq.producer.send import send_campaign
from stickerq.settings import Settings
from tests.conftest import make_settings

REQUEST = CampaignRequest(sticker_id="media-1", to="+919812345678,+919812345679")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def unit_settings(database_url: str, redis_prefix: str) -> Settings:
    return make_settings(database_url, redis_prefix, "http://127.0.0.1:9")


def key_row(sessions: sessionmaker[Session], key: str) -> IdempotencyKey | None:
    with sessions() as session:
        return session.get(IdempotencyKey, key)


def campaigns(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(Campaign)) or 0


def reserve(sessions: sessionmaker[Session], key: str, age: timedelta) -> None:
    """A reservation as a request that died before its store committed leaves it."""
    with sessions.begin() as session:
        sha = request_sha256(REQUEST, Timing())
        session.add(IdempotencyKey(key=key, request_sha256=sha, created_at=utcnow() - age))


def test_a_reservation_whose_request_died_is_taken_over_once_it_expires(
    unit_settings: Settings, sessions: sessionmaker[Session]
) -> None:
    reserve(sessions, "dead-1", timedelta(seconds=5))
    with pytest.raises(IdempotencyConflict, match="still being stored"):
        send_campaign_once(unit_settings, "dead-1", REQUEST, wait_seconds=0.2, expiry_seconds=60)
    assert campaigns(sessions) == 0
    sent = send_campaign_once(unit_settings, "dead-1", REQUEST, expiry_seconds=1)
    assert sent.created
    row = key_row(sessions, "dead-1")
    assert row is not None and row.campaign_id == sent.campaign_id
    again = send_campaign_once(unit_settings, "dead-1", REQUEST, expiry_seconds=1)
    assert (again.created, again.campaign_id) == (False, sent.campaign_id)


def test_a_request_that_outlived_its_reservation_stores_nothing(
    unit_settings: Settings, sessions: sessionmaker[Session]
) -> None:
    reserve(sessions, "slow-1", timedelta(0))
    with sessions() as session:
        reserved = session.get_one(IdempotencyKey, "slow-1").created_at
    stamping = stamping_sessions(sessions, "slow-1", reserved)
    with sessions.begin() as session:  # a retry took the expired reservation over meanwhile
        session.execute(update(IdempotencyKey).values(created_at=utcnow() + timedelta(1)))
    with pytest.raises(IdempotencyConflict, match="took it over"):
        send_campaign(unit_settings, REQUEST, sessions=stamping)
    assert campaigns(sessions) == 0


def test_a_scheduled_or_recurring_campaign_is_stamped_on_its_key_too(
    unit_settings: Settings, sessions: sessionmaker[Session]
) -> None:
    later = Timing(at="2099-01-01T09:00", tz="Asia/Kolkata")
    weekly = Timing(every="0 9 * * 1", tz="Asia/Kolkata")
    for key, timing in (("at-1", later), ("every-1", weekly)):
        sent = send_campaign_once(unit_settings, key, REQUEST, timing)
        row = key_row(sessions, key)
        assert row is not None and row.campaign_id == sent.campaign_id


CRASH = textwrap.dedent(
    """
    import os, sys
    from sqlalchemy import event
    from sqlalchemy.orm import Session
    from stickerq.models import Campaign
    from stickerq.producer.idempotency import send_campaign_once
    from tests.producer.test_idempotency import REQUEST
    from tests.conftest import make_settings

    def die_once_stored(session):
        if any(isinstance(row, Campaign) for row in session.identity_map.values()):
            os._exit(17)

    event.listen(Session, "after_commit", die_once_stored)
    settings = make_settings(sys.argv[1], sys.argv[2], "http://127.0.0.1:9")
    send_campaign_once(settings, "crash-1", REQUEST)
    """
)


def test_a_process_killed_right_after_its_store_commits_leaves_its_key_stamped(
    unit_settings: Settings, sessions: sessionmaker[Session]
) -> None:
    """The old gap: a death between the store's commit and the key's update made every
    retry a 409 for ever. The id is now written in the store's own transaction."""
    died = subprocess.run(
        [sys.executable, "-c", CRASH, unit_settings.database_url, unit_settings.redis_prefix],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert died.returncode == 17, died.stderr
    row = key_row(sessions, "crash-1")
    assert row is not None and row.campaign_id is not None
    retry = send_campaign_once(unit_settings, "crash-1", REQUEST, wait_seconds=0.2)
    assert (retry.created, retry.campaign_id) == (False, row.campaign_id)
    assert campaigns(sessions) == 1
