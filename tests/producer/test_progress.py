"""When a campaign counts as held by its paused numbers (what `send --wait` returns on).

Progress reads the counters and then the messages in separate statements; a worker may claim
between the two. The race is reproduced exactly: a claim committed by another connection just
before the second read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session, sessionmaker

from stickerq.models import Campaign, Message
from stickerq.pauses import PauseRequest, record_pause
from stickerq.producer.api import enqueue_campaign
from stickerq.producer.progress import campaign_progress
from stickerq.producer.request import CampaignRequest
from stickerq.settings import Settings
from stickerq.states import MessageStatus, PauseScope
from stickerq.worker.claims import claim
from tests.conftest import SENDER, STICKER_ID, make_settings

OTHER = "+919000000002"
UNREACHABLE_API = "http://127.0.0.1:9"  # no worker runs here: nothing is ever sent


def one_row_each_and_other_paused(
    database_url: str, redis_prefix: str, sessions: sessionmaker[Session], tmp_path: Path
) -> Campaign:
    settings: Settings = make_settings(database_url, redis_prefix, UNREACHABLE_API, sender=None)
    path = tmp_path / "recipients.csv"
    path.write_text(f"phone,from\n+919812345670,{SENDER}\n+919812345671,{OTHER}\n")
    request = CampaignRequest(sticker_id=STICKER_ID, to_file=path)
    campaign_id = enqueue_campaign(settings, request, sessions=sessions).campaign_id
    with sessions.begin() as session:
        campaign = session.get(Campaign, campaign_id)
        assert campaign is not None
        pause = PauseRequest(PauseScope.SENDER, "WA401", "sender not registered")
        record_pause(session, pause, campaign.sid, OTHER, campaign_id)
    return campaign


def test_a_pending_message_of_a_healthy_number_keeps_the_campaign_going(
    database_url: str, redis_prefix: str, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    campaign = one_row_each_and_other_paused(database_url, redis_prefix, sessions, tmp_path)
    with sessions() as session:
        progress = campaign_progress(session, campaign.id)
    assert [p["sender"] for p in progress.paused_senders] == [OTHER]
    assert not progress.held_by_senders and not progress.blocked


# On SQLite every transaction starts with BEGIN IMMEDIATE (stickerq/db.py): a claim cannot
# commit between two reads of one progress poll, so the race is PostgreSQL's alone.
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_claim_between_the_counters_and_the_messages_read_is_not_taken_for_held(
    database_url: str, redis_prefix: str, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    """The counters are read while the healthy number's message is pending (nothing sending);
    a worker claims it before the messages are read: it is still left to send."""
    campaign = one_row_each_and_other_paused(database_url, redis_prefix, sessions, tmp_path)
    with sessions() as session:
        healthy = session.scalars(
            select(Message.id).where(Message.campaign_id == campaign.id, Message.sender == SENDER)
        ).one()

    claimed: list[int] = []
    worker_busy = False

    def claim_before_the_messages_read(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        nonlocal worker_busy
        if claimed or worker_busy or "FROM messages" not in statement:
            return
        worker_busy = True
        with sessions.begin() as worker:
            claimed.extend(m.pk for m in claim(worker, campaign.id, [healthy], "token"))

    with sessions() as session:
        engine = session.get_bind()
        event.listen(engine, "before_cursor_execute", claim_before_the_messages_read)
        try:
            progress = campaign_progress(session, campaign.id)
        finally:
            event.remove(engine, "before_cursor_execute", claim_before_the_messages_read)

    assert claimed == [healthy]
    assert progress.count(MessageStatus.SENDING) == 0  # the counters were read before it
    assert not progress.held_by_senders and not progress.blocked
