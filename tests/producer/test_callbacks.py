"""Status callbacks move sent messages forward (delivered, read, failed) and never back."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from pathlib import Path

import pytest
from rich.console import Console
from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from stickerq.cli import app
from stickerq.cli.reports import report_table
from stickerq.models import Campaign, Message, UnknownCallback, utcnow
from stickerq.producer.callback_payloads import CallbackError, parse_callback
from stickerq.producer.callbacks import apply_callback, apply_callbacks
from stickerq.producer.reports import campaign_report
from stickerq.producer.unknown_callbacks import apply_unknown
from stickerq.states import MessageStatus
from tests.conftest import make_settings

# Callback times an hour ago: after the test messages were sent (SENT_AGO), before now. A
# time before a message was sent, or in the future, is not believed (test_callback_times.py).
T0 = int(time.time()) - 3600
SENT_AGO = timedelta(days=1)


def callback(message_id: str, status: str, timestamp: int = T0, **meta: object):
    return {
        "status": status,
        "message_id": message_id,
        "extra_info": {"message_id": message_id, "ref": "customer1"},
        "meta_object": {
            "value": {
                "statuses": [
                    {"id": "wamid.x", "status": status, "timestamp": str(timestamp), **meta}
                ]
            }
        },
    }


@pytest.fixture
def sent_messages(sessions: sessionmaker[Session]) -> int:
    return store_sent_messages(sessions)


def store_sent_messages(sessions: sessionmaker[Session]) -> int:
    """A campaign of three `sent` messages, M0 to M2, sent a day ago; returns its id."""
    with sessions.begin() as session:
        campaign = Campaign(name="c", sid="SID", sender="+919000000001", sticker_id="1")
        session.add(campaign)
        session.flush()
        session.execute(
            insert(Message),
            [
                {
                    "campaign_id": campaign.id,
                    "recipient": f"+9198123456{n:02d}",
                    "status": MessageStatus.SENT,
                    "message_id": f"M{n}",
                    "sent_at": utcnow() - SENT_AGO,
                }
                for n in range(3)
            ],
        )
        return campaign.id


def status_of(sessions: sessionmaker[Session], message_id: str) -> Message:
    with sessions() as session:
        return session.scalars(select(Message).where(Message.message_id == message_id)).one()


def apply(sessions: sessionmaker[Session], payload: dict) -> int:
    with sessions.begin() as session:
        return apply_callback(session, parse_callback(payload))


def test_delivered_then_read_then_a_late_delivered_never_goes_back(
    sessions: sessionmaker[Session], sent_messages: int
) -> None:
    assert apply(sessions, callback("M0", "delivered", T0)) == 1
    assert status_of(sessions, "M0").status == MessageStatus.DELIVERED
    assert apply(sessions, callback("M0", "read", T0 + 60)) == 1
    apply(sessions, callback("M0", "delivered", T0 + 90))  # late, out of order
    message = status_of(sessions, "M0")
    assert message.status == MessageStatus.READ
    assert message.delivered_at.timestamp() == T0
    assert message.read_at.timestamp() == T0 + 60


def test_outside_the_24_hour_window_is_failed_with_metas_code(
    sessions: sessionmaker[Session], sent_messages: int
) -> None:
    errors = [{"code": 131047, "title": "Re-engagement message"}]
    apply(sessions, callback("M1", "failed", errors=errors))
    message = status_of(sessions, "M1")
    assert (message.status, message.last_error_code) == (MessageStatus.FAILED, "131047")
    with sessions() as session:
        report = campaign_report(session, sent_messages)
    assert report.by_code == {"131047": 1}


def test_pair_rate_131056_is_failed_and_explained_in_the_report(
    sessions: sessionmaker[Session], sent_messages: int
) -> None:
    errors = [{"code": 131056, "title": "(Business Account, Consumer Account) pair rate limit"}]
    apply(sessions, callback("M1", "failed", errors=errors))
    message = status_of(sessions, "M1")
    assert (message.status, message.last_error_code) == (MessageStatus.FAILED, "131056")
    with sessions() as session:
        report = campaign_report(session, sent_messages)
    assert report.by_code == {"131056": 1}
    console = Console(record=True, width=200)
    console.print(report_table(report))
    assert "pair rate limit (same recipient too often)" in console.export_text()


def test_a_callback_without_message_id_or_with_an_unknown_status_is_refused() -> None:
    with pytest.raises(CallbackError, match="message_id"):
        parse_callback({"status": "read"})
    with pytest.raises(CallbackError, match="status"):
        parse_callback({"message_id": "M", "status": "exploded"})
    parsed = parse_callback({"message_id": "M", "status": "READ", "meta_object": "junk"})
    assert parsed.status == "read"


def test_cli_applies_json_lines_and_reports_what_it_did(
    database_url: str,
    redis_prefix: str,
    sent_messages: int,
    tmp_path: Path,
    sessions: sessionmaker[Session],
) -> None:
    settings = make_settings(database_url, redis_prefix, "http://127.0.0.1:9")
    lines = [callback("M2", "delivered"), callback("M2", "read"), {"status": "read"}]
    path = tmp_path / "callbacks.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines))
    result = CliRunner().invoke(
        app, ["callbacks", "apply", str(path)], env=settings.as_environment()
    )
    assert result.exit_code == 0, result.output
    assert "2 message(s) updated" in result.output and "1 not understood" in result.output
    assert status_of(sessions, "M2").status == MessageStatus.READ


def test_an_early_callback_is_kept_then_applied_once_its_message_id_is_written(
    sessions: sessionmaker[Session], sent_messages: int
) -> None:
    with sessions.begin() as session:
        applied = apply_callbacks(session, [parse_callback(callback("LATE", "read"))])
    assert (applied.changed, applied.unknown) == (0, 1)
    with sessions.begin() as session:
        assert apply_unknown(session, since=utcnow() - timedelta(minutes=1)).changed == 0
        session.execute(update(Message).where(Message.message_id == "M0").values(message_id="LATE"))
    with sessions.begin() as session:
        assert apply_unknown(session, since=utcnow() - timedelta(minutes=1)).changed == 1
    assert status_of(sessions, "LATE").status == MessageStatus.READ
    with sessions() as session:
        assert session.scalars(select(UnknownCallback)).all() == []


def test_copies_of_an_unknown_callback_keep_one_row_per_message_id_and_status(
    sessions: sessionmaker[Session],
) -> None:
    copies = [parse_callback(callback("NOT-OURS", "delivered", T0 + n)) for n in range(50)]
    with sessions.begin() as session:
        assert apply_callbacks(session, copies).unknown == 50
    with sessions.begin() as session:  # and again, in other transactions
        apply_callbacks(session, [*copies[:10], parse_callback(callback("NOT-OURS", "read"))])
    with sessions() as session:
        kept = session.scalars(select(UnknownCallback).order_by(UnknownCallback.id)).all()
    assert [(row.message_id, row.status) for row in kept] == [
        ("NOT-OURS", "delivered"),
        ("NOT-OURS", "read"),
    ]
    assert kept[0].occurred_at.timestamp() == T0  # the first one heard is the one kept
