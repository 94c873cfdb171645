"""Idempotency keys on SQLite and PostgreSQL: a campaign is never committed without its key;
a key being stored is refused at once, and one whose owner died is taken over at once."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from stickerq.models import Campaign, IdempotencyKey, utcnow
from stickerq.producer.idempotency import (
    IdempotencyConflict,
    IdempotencyInProgress,
    request_sha256,
    send_campaign_once,
    stamping_sessions,
)
from stickerq.producer.key_owners import process_identity
from stickerq.producer.request import CampaignRequest, Timing
from stickerq.producer.send import send_campaign
from stickerq.settings import Settings
from tests.conftest import make_settings
from tests.key_holder import KeyHolder

REQUEST = CampaignRequest(sticker_id="media-1", to="+919812345678,+919812345679")
BODY = {"sticker_id": "media-1", "recipients": ["+919812345678", "+919812345679"]}  # REQUEST
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


def reserve(
    sessions: sessionmaker[Session],
    key: str,
    owner_process: str | None = None,
    owner_token: str | None = None,
) -> None:
    """A reservation as a request that died before its store committed leaves it."""
    with sessions.begin() as session:
        sha = request_sha256(REQUEST, Timing())
        session.add(
            IdempotencyKey(
                key=key,
                request_sha256=sha,
                created_at=utcnow(),
                owner_process=owner_process,
                owner_token=owner_token,
            )
        )


def dead_process() -> str:
    """The identity of a process that ran on this host and has exited (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    identity = process_identity(child.pid)
    child.kill()
    child.wait(timeout=30)
    return identity


def test_a_key_being_stored_by_a_live_process_answers_in_progress_at_once(
    unit_settings: Settings, sessions: sessionmaker[Session]
) -> None:
    with KeyHolder(unit_settings.database_url, unit_settings.redis_prefix, "live-1", BODY) as first:
        began = time.monotonic()
        with pytest.raises(IdempotencyInProgress, match="still being stored") as refused:
            send_campaign_once(unit_settings, "live-1", REQUEST)
        assert time.monotonic() - began < 2  # refused, not waited for (the old code: 30 s)
        assert refused.value.retry_after >= 1
        other = CampaignRequest(sticker_id="media-2", to="+919812345678")
        with pytest.raises(IdempotencyConflict, match="different request"):
            send_campaign_once(unit_settings, "live-1", other)
        assert campaigns(sessions) == 0
        made = first.store()
    again = send_campaign_once(unit_settings, "live-1", REQUEST)
    assert (again.created, again.campaign_id) == (False, made)
    assert campaigns(sessions) == 1


def test_a_key_whose_owner_was_killed_is_taken_over_at_once(
    unit_settings: Settings, sessions: sessionmaker[Session]
) -> None:
    with KeyHolder(unit_settings.database_url, unit_settings.redis_prefix, "dead-1", BODY) as first:
        first.kill()
    sent = send_campaign_once(unit_settings, "dead-1", REQUEST)
    assert sent.created
    row = key_row(sessions, "dead-1")
    assert row is not None and row.campaign_id == sent.campaign_id
    again = send_campaign_once(unit_settings, "dead-1", REQUEST)
    assert (again.created, again.campaign_id) == (False, sent.campaign_id)
    assert campaigns(sessions) == 1


def test_concurrent_takeovers_of_a_dead_key_make_one_campaign(
    unit_settings: Settings, sessions: sessionmaker[Session]
) -> None:
    reserve(sessions, "race-1", dead_process(), "0" * 32)
    start = threading.Barrier(8)

    def retry() -> int | str:
        start.wait()
        try:
            sent = send_campaign_once(unit_settings, "race-1", REQUEST)
        except IdempotencyInProgress:
            return "in progress"
        return sent.campaign_id if sent.created else f"replayed {sent.campaign_id}"

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: retry(), range(8)))
    made = [answer for answer in answers if isinstance(answer, int)]
    assert len(made) == 1, answers
    assert set(answers) <= {made[0], "in progress", f"replayed {made[0]}"}, answers
    assert campaigns(sessions) == 1
    row = key_row(sessions, "race-1")
    assert row is not None and row.campaign_id == made[0]


def test_a_reservation_from_before_owners_were_recorded_is_taken_over(
    unit_settings: Settings, sessions: sessionmaker[Session]
) -> None:
    reserve(sessions, "old-1")  # no owner: reserved by the code before migration 0012
    sent = send_campaign_once(unit_settings, "old-1", REQUEST)
    assert sent.created and campaigns(sessions) == 1


def test_a_request_whose_reservation_was_taken_over_stores_nothing(
    unit_settings: Settings, sessions: sessionmaker[Session]
) -> None:
    reserve(sessions, "slow-1", owner_token="a" * 32)
    stamping = stamping_sessions(sessions, "slow-1", "a" * 32)
    with sessions.begin() as session:  # a retry took the reservation over meanwhile
        session.execute(update(IdempotencyKey).values(owner_token="b" * 32))
    with pytest.raises(IdempotencyConflict, match="took its reservation over"):
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
    retry = send_campaign_once(unit_settings, "crash-1", REQUEST)
    assert (retry.created, retry.campaign_id) == (False, row.campaign_id)
    assert campaigns(sessions) == 1
