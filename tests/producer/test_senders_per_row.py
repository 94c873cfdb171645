"""A recipients CSV with a `from` column: each row names the business number it goes from.

Stored on both backends: the row's own sender only where it is not the campaign's, the
campaign's numbers listed for resuming, and bad `from` cells refused with their line.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from stickerq.errors import ConfigurationError
from stickerq.models import Campaign, CampaignSender, Message
from stickerq.pauses import campaign_senders
from stickerq.producer.api import enqueue_campaign
from stickerq.producer.recipients import RecipientReport, parse_recipient_csv
from stickerq.producer.request import CampaignRequest
from stickerq.producer.store import RecipientsRejected
from stickerq.settings import Settings
from tests.conftest import SENDER, STICKER_ID, make_settings
from tests.helpers import stored_counts

OTHER = "+919000000002"
UNREACHABLE_API = "http://127.0.0.1:9"  # no worker runs here: nothing is ever sent


@pytest.fixture
def send_settings(database_url: str, redis_prefix: str) -> Settings:
    return make_settings(database_url, redis_prefix, UNREACHABLE_API, sender=None)


def write_csv(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "recipients.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_from_column_is_read_normalised_and_checked_with_its_line(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path,
        "phone,from,ref\n"
        "+919812345670,+91 90000 00001,a\n"
        "+919812345671,9000000002,b\n"  # written without +: read in the default region
        "+919812345672,,c\n"  # empty: the campaign's sender
        "+919812345673,12,d\n",
    )
    report = RecipientReport()
    rows = list(parse_recipient_csv(path, "IN", report))
    assert [(r.phone, r.sender) for r in rows] == [
        ("+919812345670", SENDER),
        ("+919812345671", OTHER),
        ("+919812345672", None),
    ]
    [bad] = report.invalid
    assert (bad.line, bad.value) == (5, "12")
    assert bad.reason.startswith("the from number is not valid")


def test_an_empty_from_cell_needs_a_campaign_sender(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "phone,from\n+919812345670,+919000000001\n+919812345671,\n")
    report = RecipientReport()
    rows = list(parse_recipient_csv(path, None, report, default_sender=False))
    assert [r.phone for r in rows] == ["+919812345670"]
    [bad] = report.invalid
    assert bad.line == 3
    assert "give the campaign a default sender (--from)" in bad.reason


def test_a_campaign_with_a_from_column_needs_no_sender_and_lists_its_numbers(
    send_settings: Settings, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path,
        f"phone,from\n+919812345670,{SENDER}\n+919812345671,{OTHER}\n+919812345672,{OTHER}\n",
    )
    result = enqueue_campaign(
        send_settings, CampaignRequest(sticker_id=STICKER_ID, to_file=path), sessions=sessions
    )
    assert result.recipients == 3
    with sessions() as session:
        campaign = session.get(Campaign, result.campaign_id)
        assert campaign is not None
        assert (campaign.sender, campaign.senders_per_row) == ("", True)
        assert campaign_senders(session, campaign) == [SENDER, OTHER]
        rows = session.execute(
            select(Message.recipient, Message.sender)
            .where(Message.campaign_id == result.campaign_id)
            .order_by(Message.id)
        ).all()
    assert [tuple(row) for row in rows] == [
        ("+919812345670", SENDER),
        ("+919812345671", OTHER),
        ("+919812345672", OTHER),
    ]


def test_rows_from_the_campaign_sender_store_none_of_their_own(
    send_settings: Settings, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    path = write_csv(tmp_path, f"phone,from\n+919812345670,{SENDER}\n+919812345671,\n")
    request = CampaignRequest(sticker_id=STICKER_ID, to_file=path, sender=SENDER)
    only_own = enqueue_campaign(send_settings, request, sessions=sessions)
    path = write_csv(tmp_path, f"phone,from\n+919812345670,{OTHER}\n+919812345671,\n")
    mixed = enqueue_campaign(send_settings, request, sessions=sessions)
    with sessions() as session:
        own = session.get(Campaign, only_own.campaign_id)
        assert own is not None and not own.senders_per_row  # the plain path: no grouping
        both = session.get(Campaign, mixed.campaign_id)
        assert both is not None and both.senders_per_row
        assert campaign_senders(session, both) == [SENDER, OTHER]
        senders = session.scalars(
            select(Message.sender).where(Message.campaign_id.in_([own.id, both.id]))
        ).all()
    assert sorted(senders, key=str) == [OTHER, None, None, None]


def test_bad_from_cells_store_nothing_and_name_their_lines(
    send_settings: Settings, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    path = write_csv(tmp_path, "phone,from\n+919812345670,+919000000001\n+919812345671,call me\n")
    before = stored_counts(send_settings)
    with pytest.raises(RecipientsRejected) as caught:
        enqueue_campaign(
            send_settings, CampaignRequest(sticker_id=STICKER_ID, to_file=path), sessions=sessions
        )
    [bad] = caught.value.report.invalid
    assert (bad.line, bad.value) == (3, "call me")
    assert stored_counts(send_settings) == before
    with sessions() as session:
        assert session.scalars(select(CampaignSender)).all() == []


def test_without_a_sender_or_a_from_column_the_error_says_both_ways(
    send_settings: Settings, tmp_path: Path
) -> None:
    path = write_csv(tmp_path, "phone\n+919812345670\n")
    with pytest.raises(ConfigurationError, match="give the recipients CSV a `from` column"):
        enqueue_campaign(send_settings, CampaignRequest(sticker_id=STICKER_ID, to_file=path))
