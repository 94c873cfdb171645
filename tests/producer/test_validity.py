"""Validity periods without a worker: reading --valid-for / --valid-until, where the deadline
is stored, and the counters of expired messages on both backends."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from stickerq.cli import app
from stickerq.db import open_sessions
from stickerq.models import Campaign, utcnow
from stickerq.producer.request import CampaignRequest, Timing
from stickerq.producer.schedule import ScheduleError, reschedule, schedule_campaign
from stickerq.producer.send import send_campaign
from stickerq.producer.validity import ValidityError, parse_valid_for, read_validity
from stickerq.settings import Settings
from stickerq.states import CampaignStatus, MessageStatus
from stickerq.worker.claims import claim
from stickerq.worker.expiry import expire_late, expire_overdue
from stickerq.worker.results import write_results
from tests.conftest import STICKER_ID, make_settings
from tests.test_counts import answered, assert_exact
from tests.worker.test_claims import stored_campaign

EXPIRED = MessageStatus.EXPIRED


@pytest.mark.parametrize(
    ("text", "seconds"), [("6h", 21600), ("90m", 5400), ("1h30m", 5400), ("1d", 86400)]
)
def test_valid_for_reads_durations(text: str, seconds: int) -> None:
    assert parse_valid_for(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("valid_for", "valid_until", "problem"),
    [
        ("6 hours", None, "not a duration"),
        ("0s", None, "at least one second"),
        (None, "2020-01-01T00:00+00:00", "already past"),
        (None, "2099-01-01T00:00", "no time zone"),
        (None, "tomorrow", "not a time"),
        ("6h", "2099-01-01T00:00+00:00", "do not go together"),
    ],
)
def test_bad_validity_is_refused_with_the_fix(
    valid_for: str | None, valid_until: str | None, problem: str
) -> None:
    with pytest.raises(ValidityError, match=problem):
        read_validity(valid_for, valid_until)


def test_unset_means_no_limit_and_the_setting_is_the_default() -> None:
    assert not read_validity(None, None).limited
    assert read_validity(None, None, "2h").valid_for == timedelta(hours=2)
    assert read_validity("30m", None, "2h").valid_for == timedelta(minutes=30)
    with pytest.raises(ValidityError, match="STICKERQ_VALID_FOR"):
        read_validity(None, None, "soon")


@pytest.fixture
def local_settings(sqlite_database: str, redis_prefix: str) -> Settings:
    return make_settings(sqlite_database, redis_prefix, "http://127.0.0.1:9", valid_for="3h")


def _stored(settings: Settings, campaign_id: int) -> Campaign:
    with open_sessions(settings.database_url) as sessions, sessions() as session:
        campaign = session.get(Campaign, campaign_id)
        assert campaign is not None
        return campaign


def test_deadlines_are_stored_from_the_start_now_or_at_the_campaigns_time(
    local_settings: Settings,
) -> None:
    request = CampaignRequest(sticker_id=STICKER_ID, to="+919812345678")
    now_sent, _ = send_campaign(local_settings, request)  # STICKERQ_VALID_FOR=3h
    campaign = _stored(local_settings, now_sent.campaign_id)
    assert campaign.valid_for_seconds == 3 * 3600 and campaign.valid_until is not None
    assert abs(campaign.valid_until - (campaign.created_at + timedelta(hours=3))) < timedelta(1)

    at = utcnow().replace(microsecond=0) + timedelta(days=1)
    later = schedule_campaign(local_settings, request, at=at)
    assert _stored(local_settings, later.campaign_id).valid_until == at + timedelta(hours=3)
    reschedule(local_settings, later.campaign_id, at + timedelta(hours=1), actor="tester")
    assert _stored(local_settings, later.campaign_id).valid_until == at + timedelta(hours=4)

    # A naive --valid-until is read in --tz, like --at.
    until = CampaignRequest(
        sticker_id=STICKER_ID, to="+919812345678", valid_until="2099-06-01T18:00"
    )
    fixed, _ = send_campaign(local_settings, until, Timing(tz="Asia/Kolkata"))
    campaign = _stored(local_settings, fixed.campaign_id)
    assert campaign.valid_until == datetime(2099, 6, 1, 12, 30, tzinfo=UTC)
    assert campaign.valid_for_seconds is None


def test_a_deadline_before_the_campaigns_time_or_fixed_for_a_recurring_one_is_refused(
    local_settings: Settings,
) -> None:
    at = utcnow() + timedelta(days=2)
    before = CampaignRequest(
        sticker_id=STICKER_ID, to="+919812345678", valid_until=utcnow() + timedelta(days=1)
    )
    with pytest.raises(ValidityError, match="before the campaign's time"):
        send_campaign(local_settings, before, Timing(at=at))
    with pytest.raises(ValidityError, match="recurring broadcast"):
        send_campaign(local_settings, before, Timing(every="0 9 * * *", tz="Asia/Kolkata"))
    with pytest.raises(ScheduleError, match="--tz and --now-if-past only go with"):
        send_campaign(local_settings, CampaignRequest(sticker_id=STICKER_ID), Timing(tz="UTC"))


def test_expired_messages_are_counted_exactly_on_both_backends(
    sessions: sessionmaker[Session],
) -> None:
    """Every way a message expires: a send past the deadline (the result write), a claim past
    it (by primary key), the periodic expiry of a paused campaign (by campaign)."""
    campaign_id, ids = stored_campaign(sessions, 30)
    with sessions.begin() as session:
        claimed = [m.pk for m in claim(session, campaign_id, ids[:10], "T1")]
    with sessions.begin() as session:
        results = [answered(pk, MessageStatus.SENT, message_id=f"m{pk}") for pk in claimed[:5]]
        results += [answered(pk, EXPIRED, code="WA500") for pk in claimed[5:]]
        write_results(session, "T1", results)
    assert assert_exact(sessions, campaign_id) == {"sent": 5, EXPIRED: 5, "pending": 20}

    with sessions.begin() as session:
        session.execute(
            update(Campaign)
            .where(Campaign.id == campaign_id)
            .values(status=CampaignStatus.PAUSED, valid_until=utcnow() - timedelta(seconds=1))
        )
        assert expire_late(session, campaign_id, ids[5:15]) == 5  # 5 of them were sent
    assert assert_exact(sessions, campaign_id) == {"sent": 5, EXPIRED: 10, "pending": 15}

    assert expire_overdue(sessions) == 15
    assert expire_overdue(sessions) == 0  # nothing pending is left: the campaign is skipped
    assert assert_exact(sessions, campaign_id) == {"sent": 5, EXPIRED: 25}
    with sessions() as session:
        campaign = session.get(Campaign, campaign_id)
        assert campaign is not None and campaign.started_at is not None


def test_cli_send_and_requeue_take_a_deadline(local_settings: Settings) -> None:
    env: dict[str, str | None] = {key: None for key in os.environ if key.startswith("STICKERQ_")}
    env.update(local_settings.as_environment(), COLUMNS="200")
    runner = CliRunner()
    args = ["send", "--sticker-id", STICKER_ID, "--to", "+919812345678,+919812345679"]
    refused = runner.invoke(app, [*args, "--valid-for", "six hours"], env=env)
    assert refused.exit_code == 2 and "is not a duration" in refused.output
    assert "Traceback" not in refused.output

    sent = runner.invoke(app, [*args, "--valid-for", "90m", "--json"], env=env)
    assert sent.exit_code == 0, sent.output
    campaign_id = json.loads(sent.stdout)["campaign_id"]
    campaign = _stored(local_settings, campaign_id)
    assert campaign.valid_for_seconds == 5400
    shown = runner.invoke(app, ["campaigns", "show", str(campaign_id)], env=env)
    assert "valid until" in shown.output

    with open_sessions(local_settings.database_url) as sessions:
        with sessions.begin() as session:
            session.execute(
                update(Campaign)
                .where(Campaign.id == campaign_id)
                .values(valid_until=utcnow() - timedelta(seconds=1))
            )
        assert expire_overdue(sessions) == 2
    requeue = ["requeue", "--campaign", str(campaign_id), "--status", "expired"]
    no_deadline = runner.invoke(app, requeue, env=env)
    assert no_deadline.exit_code != 0 and "new deadline" in " ".join(no_deadline.output.split())
    with_deadline = runner.invoke(app, [*requeue, "--valid-until", "2099-01-01T00:00Z"], env=env)
    assert with_deadline.exit_code == 0, with_deadline.output
    assert "requeued 2 expired message(s)" in with_deadline.output
    assert _stored(local_settings, campaign_id).valid_until == datetime(2099, 1, 1, tzinfo=UTC)
