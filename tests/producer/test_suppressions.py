"""The suppression list on both backends: add, remove, list and import; recipients on it
dropped at enqueue and counted, per account; Meta's 131050 in a callback adds the number."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from stickerq.counts import campaign_counts, counted_from_rows
from stickerq.models import Campaign, Message, Suppression, utcnow
from stickerq.producer.api import enqueue_campaign
from stickerq.producer.callback_payloads import parse_callback
from stickerq.producer.callbacks import apply_callbacks
from stickerq.producer.lifecycle import show_campaign
from stickerq.producer.request import CampaignRequest
from stickerq.producer.store import RecipientsRejected
from stickerq.producer.suppressions import (
    MARKETING_OPT_OUT_REASON,
    SuppressionError,
    add_numbers,
    find_number,
    import_file,
    list_numbers,
    remove_numbers,
)
from stickerq.producer.unknown_callbacks import apply_unknown
from stickerq.settings import Settings
from stickerq.states import MessageStatus
from tests.conftest import STICKER_ID, make_settings
from tests.producer.test_callbacks import callback

A, B, C, D = (f"+9198123400{n:02d}" for n in range(4))


@pytest.fixture
def settings(database_url: str, redis_prefix: str) -> Settings:
    return make_settings(database_url, redis_prefix, "http://127.0.0.1:9")


def test_add_list_remove_normalise_and_keep_the_first_reason(settings: Settings) -> None:
    added = add_numbers(settings, ["+91 98123-40000", B], "asked by SMS", actor="tester")
    assert (added.added, added.already) == (2, 0)
    again = add_numbers(settings, [A], "another reason", actor="tester")
    assert (again.added, again.already) == (0, 1)

    page = list_numbers(settings)
    assert page.total == 2 and page.next_after is None
    assert [(n.phone, n.reason) for n in page.numbers] == [(A, "asked by SMS"), (B, "asked by SMS")]
    assert all(n.created_at.tzinfo is not None for n in page.numbers)
    first = list_numbers(settings, limit=1)
    assert [n.phone for n in first.numbers] == [A] and first.next_after == A
    assert [n.phone for n in list_numbers(settings, after=A).numbers] == [B]

    removed = remove_numbers(settings, [A, C], actor="tester")
    assert (removed.removed, removed.not_found) == (1, 1)
    assert find_number(settings, A) is None
    assert find_number(settings, B) is not None


def test_one_invalid_number_refuses_the_whole_add(settings: Settings) -> None:
    with pytest.raises(SuppressionError, match=r"1 invalid number.*'\+91123'"):
        add_numbers(settings, [A, "+91123"], actor="tester")
    assert list_numbers(settings).total == 0
    with pytest.raises(SuppressionError, match="reason"):
        add_numbers(settings, [A], "  ", actor="tester")


def test_import_streams_a_csv_storing_valid_rows_and_listing_bad_ones_by_line(
    settings: Settings, tmp_path: Path
) -> None:
    add_numbers(settings, [A], actor="tester")
    csv = tmp_path / "optouts.csv"
    csv.write_text(f"name,phone\nx,{A}\ny,not-a-phone\nz,{B}\nw,{B}\nv,+91123\nu,{C}\n")
    result = import_file(settings, csv, "imported from CRM", actor="tester")
    assert (result.added, result.already, result.invalid_count) == (2, 2, 2)
    assert [(row.line, row.value) for row in result.invalid] == [(3, "not-a-phone"), (6, "+91123")]
    assert {n.phone: n.reason for n in list_numbers(settings).numbers} == {
        A: "opted out",
        B: "imported from CRM",
        C: "imported from CRM",
    }
    (tmp_path / "bad.csv").write_text("number\n+919812340000\n")
    with pytest.raises(SuppressionError, match="no 'phone' column"):
        import_file(settings, tmp_path / "bad.csv", actor="tester")


def test_suppressed_recipients_are_dropped_at_enqueue_and_counted(
    settings: Settings, sessions: sessionmaker[Session]
) -> None:
    add_numbers(settings, [A, B], actor="tester")
    request = CampaignRequest(sticker_id=STICKER_ID, to=f"{A},{C},{B},{A},{D},{C}")
    result = enqueue_campaign(settings, request, sessions=sessions)
    assert (result.recipients, result.suppressed, result.duplicates) == (2, 2, 2)
    with sessions() as session:
        stored = session.scalars(
            select(Message.recipient).where(Message.campaign_id == result.campaign_id)
        ).all()
        assert sorted(stored) == [C, D]
        assert session.get(Campaign, result.campaign_id).suppressed_count == 2  # type: ignore[union-attr]
        counts = campaign_counts(session, result.campaign_id)
        assert counts.by_status == counted_from_rows(session, result.campaign_id).by_status
    assert show_campaign(sessions, result.campaign_id).suppressed_at_enqueue == 2


def test_the_list_is_per_account(settings: Settings, sessions: sessionmaker[Session]) -> None:
    add_numbers(settings, [A], account="HXOTHERACCOUNT", actor="tester")
    result = enqueue_campaign(
        settings, CampaignRequest(sticker_id=STICKER_ID, to=f"{A},{B}"), sessions=sessions
    )
    assert (result.recipients, result.suppressed) == (2, 0)
    other = make_settings(
        settings.database_url,
        settings.redis_prefix,
        "http://127.0.0.1:9",
        kaleyra_sid="HXOTHERACCOUNT",
    )
    dropped = enqueue_campaign(
        other, CampaignRequest(sticker_id=STICKER_ID, to=f"{A},{B}"), sessions=sessions
    )
    assert (dropped.recipients, dropped.suppressed) == (1, 1)


def test_a_campaign_whose_every_recipient_is_suppressed_is_refused(settings: Settings) -> None:
    add_numbers(settings, [A, B], actor="tester")
    with pytest.raises(RecipientsRejected, match="suppression list; nothing was stored"):
        enqueue_campaign(settings, CampaignRequest(sticker_id=STICKER_ID, to=f"{A},{B}"))


def test_a_131050_callback_suppresses_its_recipient_on_the_campaign_account(
    sessions: sessionmaker[Session],
) -> None:
    with sessions.begin() as session:
        campaign = Campaign(name="c", sid="SID", sender="+919000000001", sticker_id="1")
        session.add(campaign)
        session.flush()
        for n, recipient in enumerate((A, B, C)):
            session.add(
                Message(
                    campaign_id=campaign.id,
                    recipient=recipient,
                    status=MessageStatus.SENT,
                    message_id=f"M{n}",
                )
            )
    opted_out = {"errors": [{"code": 131050, "title": "User has stopped marketing messages"}]}
    outside = {"errors": [{"code": 131047, "title": "Re-engagement message"}]}
    with sessions.begin() as session:
        apply_callbacks(
            session,
            [
                parse_callback(callback("M0", "failed", **opted_out)),
                parse_callback(callback("M0", "failed", 1_800_000_005, **opted_out)),  # again
                parse_callback(callback("M1", "failed", **outside)),
                parse_callback(callback("M9", "failed", **opted_out)),  # no such message
            ],
        )
    with sessions() as session:
        rows = session.scalars(select(Suppression)).all()
        assert [(r.sid, r.phone, r.reason) for r in rows] == [("SID", A, MARKETING_OPT_OUT_REASON)]
        failed = session.scalars(select(Message).where(Message.message_id == "M0")).one()
        assert (failed.status, failed.last_error_code) == (MessageStatus.FAILED, "131050")


def test_a_131050_callback_that_came_before_its_message_id_suppresses_once_applied(
    sessions: sessionmaker[Session],
) -> None:
    opted_out = {"errors": [{"code": 131050, "title": "User has stopped marketing messages"}]}
    started = utcnow()
    with sessions.begin() as session:
        early = apply_callbacks(session, [parse_callback(callback("M7", "failed", **opted_out))])
        assert early.unknown == 1
        campaign = Campaign(name="c", sid="SID", sender="+919000000001", sticker_id="1")
        session.add(campaign)
        session.flush()
        session.add(Message(campaign_id=campaign.id, recipient=D, status="sent", message_id="M7"))
    with sessions.begin() as session:
        assert apply_unknown(session, started).changed == 1
    with sessions() as session:
        assert session.get(Suppression, ("SID", D)) is not None
