"""The campaign status moves, row by row: from every status, each move either ends in its
status or changes nothing, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session, sessionmaker

from stickerq.campaign_status import MOVES, Move, move_campaign, move_campaigns
from stickerq.models import Campaign, utcnow
from stickerq.states import CampaignStatus as S

# (move, the statuses it starts from, where it ends): the table, written out again
# rather than read from MOVES.
EXPECTED = [
    (Move.DUE, {S.SCHEDULED}, S.QUEUED),
    (Move.START, {S.QUEUED}, S.RUNNING),
    (Move.COMPLETE, {S.RUNNING}, S.COMPLETED),
    (Move.REOPEN, {S.COMPLETED}, S.RUNNING),
    (Move.PAUSE, {S.QUEUED, S.RUNNING}, S.PAUSED),
    (Move.RESUME, {S.PAUSED}, S.RUNNING),
    (Move.CANCEL, {S.SCHEDULED, S.QUEUED, S.RUNNING, S.PAUSED}, S.CANCELLED),
]


def new_campaign(sessions: sessionmaker[Session], status: S, started: bool = True) -> int:
    with sessions.begin() as session:
        campaign = Campaign(
            name="moves",
            sid="HXAP16XXXXXX97IN",
            sender="+919000000001",
            sticker_id="798123456789012",
            status=status,
            started_at=utcnow() if started else None,
        )
        session.add(campaign)
        session.flush()
        return campaign.id


def status_of(sessions: sessionmaker[Session], campaign_id: int) -> str:
    with sessions() as session:
        campaign = session.get(Campaign, campaign_id)
        assert campaign is not None
        return campaign.status


def test_the_table_is_the_expected_one() -> None:
    assert {move: (set(starts), end) for move, (starts, end) in MOVES.items()} == {
        move: (starts, end) for move, starts, end in EXPECTED
    }


@pytest.mark.parametrize(("move", "starts", "end"), EXPECTED, ids=[m for m, _, _ in EXPECTED])
def test_each_move_from_each_status(
    sessions: sessionmaker[Session], move: Move, starts: set[S], end: S
) -> None:
    for status in S:
        campaign_id = new_campaign(sessions, status)
        with sessions.begin() as session:
            moved = move_campaign(session, campaign_id, move)
        assert moved == (status in starts), (move, status)
        assert status_of(sessions, campaign_id) == (end if moved else status), (move, status)


def test_resume_of_a_campaign_never_claimed_puts_it_back_in_the_queue(
    sessions: sessionmaker[Session],
) -> None:
    campaign_id = new_campaign(sessions, S.PAUSED, started=False)
    with sessions.begin() as session:
        assert move_campaign(session, campaign_id, Move.RESUME)
    assert status_of(sessions, campaign_id) == S.QUEUED


def test_a_move_over_many_campaigns_names_those_it_moved_and_sets_other_columns(
    sessions: sessionmaker[Session],
) -> None:
    due = [new_campaign(sessions, S.SCHEDULED) for _ in range(2)]
    new_campaign(sessions, S.QUEUED)
    with sessions.begin() as session:
        assert sorted(move_campaigns(session, Move.DUE)) == due
        assert move_campaigns(session, Move.DUE) == []  # a second beat moves nothing
        assert move_campaign(session, due[0], Move.PAUSE, pause_reason="why")
    with sessions() as session:
        paused = session.get(Campaign, due[0])
        assert paused is not None and paused.pause_reason == "why"
