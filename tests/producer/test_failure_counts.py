"""The dashboard's bounded failure reads: the summary from the counters equals the one counted
from the messages, and examples stop at their limit."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from stickerq.models import Campaign, Message
from stickerq.producer.failures import (
    FailureFilters,
    campaign_failure_summary,
    failure_examples,
    failure_summary,
)
from stickerq.states import MessageStatus
from tests.conftest import SENDER, STICKER_ID

ROWS = [  # status, code, how many
    (MessageStatus.FAILED, "WA400", 4),
    (MessageStatus.FAILED, "WA500", 1),
    (MessageStatus.PARKED, "E110", 2),
    (MessageStatus.UNKNOWN, None, 1),
    (MessageStatus.SENT, None, 2),
]


def _campaign(session: Session, rows: list[tuple[MessageStatus, str | None, int]]) -> int:
    campaign = Campaign(
        name="c", sid="HXAP16XXXXXX97IN", sender=SENDER, sticker_id=STICKER_ID, status="running"
    )
    session.add(campaign)
    session.flush()
    number = 0
    for status, code, count in rows:
        for _ in range(count):
            number += 1
            recipient = f"+91981234{number:04d}"
            session.add(
                Message(
                    campaign_id=campaign.id,
                    recipient=recipient,
                    status=status,
                    last_error_code=code,
                    attempts=1,
                )
            )
    session.flush()
    return campaign.id


def test_the_summary_from_the_counters_equals_the_counted_one(
    sessions: sessionmaker[Session],
) -> None:
    with sessions.begin() as session:
        campaign_id = _campaign(session, ROWS)
        _campaign(session, [(MessageStatus.FAILED, "WA400", 3)])  # another campaign's
    with sessions() as session:
        counted = failure_summary(session, FailureFilters(campaign_id=campaign_id))
        from_counters = campaign_failure_summary(session, campaign_id)
        examples = failure_examples(session, campaign_id, MessageStatus.FAILED, 3)
    assert from_counters == counted
    assert [(r.status, r.code, r.count) for r in from_counters] == [
        ("parked", "E110", 2),
        ("failed", "WA400", 4),
        ("failed", "WA500", 1),
        ("unknown", None, 1),
    ]
    assert len(examples) == 3
    assert {(r.campaign_id, r.status) for r in examples} == {(campaign_id, "failed")}
