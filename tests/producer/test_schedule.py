"""Scheduling a campaign: reading the time (offsets, zones, DST, the past), storing it
`scheduled` with nothing published, rescheduling only while scheduled, recurring schedules,
and the CLI (`send --at/--every`, `reschedule`, `schedules list|stop`) on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import redis
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from stickerq.cli import app
from stickerq.models import Campaign, Message, Schedule, utcnow
from stickerq.producer.recipients import RecipientFileError
from stickerq.producer.request import CampaignRequest
from stickerq.producer.schedule import (
    ScheduleError,
    When,
    create_schedule,
    list_schedules,
    parse_when,
    reschedule,
    schedule_campaign,
    stop_schedule,
    zone_named,
)
from stickerq.producer.store import RecipientsRejected
from stickerq.producer.views.sending import ScheduledView
from stickerq.queue import queued_tasks as tasks_in_queues
from stickerq.settings import Settings
from stickerq.states import CampaignStatus
from tests.conftest import STICKER_ID, make_settings

UNREACHABLE_API = "http://127.0.0.1:9"  # no worker runs in these tests: nothing is sent
NOW = datetime(2030, 1, 15, 12, 0, tzinfo=UTC)
A, B, C = (f"+91981234567{n}" for n in range(3))


@pytest.fixture
def schedule_settings(database_url: str, redis_prefix: str) -> Settings:
    return make_settings(database_url, redis_prefix, UNREACHABLE_API)


def queued_tasks(settings: Settings) -> int:
    return int(tasks_in_queues(redis.Redis.from_url(settings.redis_url), settings.redis_prefix))


def campaign_row(sessions: sessionmaker[Session], campaign_id: int) -> Campaign:
    with sessions() as session:
        campaign = session.get(Campaign, campaign_id)
        assert campaign is not None
        return campaign


def in_a_day() -> datetime:
    return (utcnow() + timedelta(days=1)).replace(microsecond=0)


# --- reading the time -------------------------------------------------------------------


def test_time_with_offset_is_read_as_that_instant_and_offset() -> None:
    when = parse_when("2030-12-01T09:00+05:30", now=NOW)
    assert when == When(datetime(2030, 12, 1, 3, 30, tzinfo=UTC), "+05:30")
    assert when.describe() == "2030-12-01 09:00 +05:30 = 2030-12-01 03:30 UTC"
    assert zone_named(when.zone).utcoffset(None) == timedelta(hours=5, minutes=30)


def test_time_in_utc_is_shown_once() -> None:
    when = parse_when("2030-12-01T09:00Z", now=NOW)
    assert (when.utc, when.zone) == (datetime(2030, 12, 1, 9, 0, tzinfo=UTC), "UTC")
    assert when.describe() == "2030-12-01 09:00 UTC"


def test_time_without_zone_is_refused_with_the_fix() -> None:
    with pytest.raises(ScheduleError, match=r"has no time zone.*\+05:30.*--tz Asia/Kolkata"):
        parse_when("2030-12-01T09:00", now=NOW)


def test_time_without_offset_is_read_in_the_zone_given() -> None:
    when = parse_when("2030-12-01T09:00", "Asia/Kolkata", now=NOW)
    assert when == When(datetime(2030, 12, 1, 3, 30, tzinfo=UTC), "Asia/Kolkata")
    assert when.local == datetime(2030, 12, 1, 9, 0, tzinfo=ZoneInfo("Asia/Kolkata"))
    assert when.describe() == "2030-12-01 09:00 +05:30 (Asia/Kolkata) = 2030-12-01 03:30 UTC"


def test_offset_and_zone_that_disagree_are_refused() -> None:
    parse_when("2030-12-01T09:00+05:30", "Asia/Kolkata", now=NOW)  # they agree: fine
    with pytest.raises(ScheduleError, match=r"offset \+05:30 but Europe/Berlin is at \+01:00"):
        parse_when("2030-12-01T09:00+05:30", "Europe/Berlin", now=NOW)


@pytest.mark.parametrize(
    ("text", "tz", "problem"),
    [
        ("next tuesday", None, "is not a time: write ISO 8601"),
        ("2030-12-01T09:00", "Asia/Kolkatta", "unknown time zone 'Asia/Kolkatta'"),
        ("2030-12-01T09:00", "+25:00", "unknown time zone"),
    ],
)
def test_bad_time_or_zone_is_refused_with_the_fix(text: str, tz: str | None, problem: str) -> None:
    with pytest.raises(ScheduleError, match=problem):
        parse_when(text, tz, now=NOW)


def test_past_time_is_refused_unless_now_if_past() -> None:
    with pytest.raises(ScheduleError, match=r"is in the past .*--now-if-past"):
        parse_when("2030-01-15T11:59+00:00", now=NOW)
    when = parse_when("2030-01-15T11:59+00:00", now=NOW, now_if_past=True)
    assert (when.utc, when.moved_from_past) == (NOW, True)


def test_local_time_skipped_by_dst_is_refused_with_a_time_that_exists() -> None:
    # Europe/Berlin, 2030-03-31: 02:00 CET jumps to 03:00 CEST.
    with pytest.raises(ScheduleError, match=r"02:30 does not exist in Europe/Berlin.*03:30"):
        parse_when("2030-03-31T02:30", "Europe/Berlin", now=NOW)


def test_local_time_repeated_by_dst_is_refused_until_its_offset_says_which() -> None:
    # Europe/Berlin, 2030-10-27: 03:00 CEST goes back to 02:00 CET; 02:30 happens twice.
    with pytest.raises(ScheduleError, match=r"happens twice.*--at 2030-10-27T02:30\+02:00"):
        parse_when("2030-10-27T02:30", "Europe/Berlin", now=NOW)
    first = parse_when("2030-10-27T02:30+02:00", "Europe/Berlin", now=NOW)
    second = parse_when("2030-10-27T02:30+01:00", "Europe/Berlin", now=NOW)
    assert second.utc - first.utc == timedelta(hours=1)


# --- storing a scheduled campaign -------------------------------------------------------


def test_scheduled_campaign_is_stored_with_its_time_and_zone_and_nothing_published(
    schedule_settings: Settings, sessions: sessionmaker[Session]
) -> None:
    at = in_a_day()
    local = at.astimezone(ZoneInfo("Asia/Kolkata")).replace(tzinfo=None)
    scheduled = schedule_campaign(
        schedule_settings,
        CampaignRequest(sticker_id=STICKER_ID, to=f"{A},{B},{A}", ref="spring"),
        at=local.isoformat(),
        tz="Asia/Kolkata",
        sessions=sessions,
    )
    campaign = campaign_row(sessions, scheduled.campaign_id)
    assert campaign.status == CampaignStatus.SCHEDULED
    assert (campaign.scheduled_at, campaign.timezone) == (at, "Asia/Kolkata")
    assert campaign.recipient_count == 2 and campaign.schedule_id is None
    assert (scheduled.result.batches, scheduled.result.duplicates) == (0, 1)
    assert queued_tasks(schedule_settings) == 0
    shown = ScheduledView.of_scheduled(scheduled).model_dump(mode="json")
    assert shown["scheduled_at_utc"] == at.isoformat()


def test_rejected_recipients_store_nothing_when_scheduling(
    schedule_settings: Settings, sessions: sessionmaker[Session]
) -> None:
    with pytest.raises(RecipientsRejected):
        schedule_campaign(
            schedule_settings,
            CampaignRequest(sticker_id=STICKER_ID, to="+91123"),
            at=in_a_day(),
            sessions=sessions,
        )
    with pytest.raises(RecipientFileError):
        schedule_campaign(
            schedule_settings,
            CampaignRequest(sticker_id=STICKER_ID, to_file=Path("/nonexistent.csv")),
            at=in_a_day(),
            sessions=sessions,
        )
    with sessions() as session:
        assert session.scalars(select(Campaign)).all() == []


def test_reschedule_moves_a_campaign_only_while_it_is_scheduled(
    schedule_settings: Settings, sessions: sessionmaker[Session]
) -> None:
    first = in_a_day()
    campaign_id = schedule_campaign(
        schedule_settings,
        CampaignRequest(sticker_id=STICKER_ID, to=A),
        at=first,
        tz="Europe/Berlin",
        sessions=sessions,
    ).campaign_id
    later = first + timedelta(hours=3)
    naive = later.astimezone(ZoneInfo("Europe/Berlin")).replace(tzinfo=None).isoformat()
    when = reschedule(
        schedule_settings, campaign_id, naive, sessions=sessions, actor="tester"
    )  # its own zone
    assert (when.utc, when.zone) == (later, "Europe/Berlin")
    assert campaign_row(sessions, campaign_id).scheduled_at == later

    with sessions.begin() as session:  # beat dispatched it
        session.execute(update(Campaign).where(Campaign.id == campaign_id).values(status="queued"))
    with pytest.raises(ScheduleError, match=rf"campaign {campaign_id} is queued, no longer"):
        reschedule(
            schedule_settings, campaign_id, later.isoformat(), sessions=sessions, actor="tester"
        )
    assert campaign_row(sessions, campaign_id).scheduled_at == later
    with pytest.raises(ScheduleError, match="no campaign 999"):
        reschedule(schedule_settings, 999, later.isoformat(), sessions=sessions, actor="tester")


def test_recurring_schedule_stores_first_run_as_template_and_next_run_after_it(
    schedule_settings: Settings, sessions: sessionmaker[Session]
) -> None:
    scheduled = create_schedule(
        schedule_settings,
        CampaignRequest(sticker_id=STICKER_ID, to=f"{A},{B},{C}", name="daily hello"),
        every="0 9 * * *",
        tz="Asia/Kolkata",
        sessions=sessions,
    )
    campaign = campaign_row(sessions, scheduled.campaign_id)
    with sessions() as session:
        schedule = session.get(Schedule, scheduled.schedule_id)
    assert schedule is not None
    assert campaign.status == CampaignStatus.SCHEDULED and campaign.schedule_id == schedule.id
    assert schedule.template_campaign_id == campaign.id and schedule.active
    assert campaign.scheduled_at is not None and schedule.next_run_at is not None
    local = campaign.scheduled_at.astimezone(ZoneInfo("Asia/Kolkata"))
    assert (local.hour, local.minute) == (9, 0) and campaign.scheduled_at > utcnow()
    assert schedule.next_run_at - campaign.scheduled_at == timedelta(days=1)
    assert queued_tasks(schedule_settings) == 0

    [(row, runs)] = list_schedules(schedule_settings, sessions)
    assert row.cron == "0 9 * * *" and runs == 1 and row.active is True
    assert stop_schedule(schedule_settings, schedule.id, sessions, actor="tester") == (
        True,
        [campaign.id],
    )
    assert stop_schedule(schedule_settings, schedule.id, sessions, actor="tester") == (
        False,
        [campaign.id],
    )
    with pytest.raises(ScheduleError, match="no schedule 999"):
        stop_schedule(schedule_settings, 999, sessions, actor="tester")


@pytest.mark.parametrize(
    ("every", "tz", "problem"),
    [
        ("61 * * * *", "Asia/Kolkata", "is not a cron expression"),
        ("0 9 * * *", "+05:30", "needs --tz with an IANA zone"),
    ],
)
def test_bad_recurring_schedule_is_refused(
    schedule_settings: Settings,
    sessions: sessionmaker[Session],
    every: str,
    tz: str,
    problem: str,
) -> None:
    with pytest.raises(ScheduleError, match=problem):
        create_schedule(
            schedule_settings,
            CampaignRequest(sticker_id=STICKER_ID, to=A),
            every=every,
            tz=tz,
            sessions=sessions,
        )


# --- the command line -------------------------------------------------------------------


@pytest.fixture
def cli_env(schedule_settings: Settings) -> Iterator[dict[str, str | None]]:
    env: dict[str, str | None] = {key: None for key in os.environ if key.startswith("STICKERQ_")}
    env.update(schedule_settings.as_environment(), COLUMNS="200")
    yield env


def flat(output: str) -> str:
    """The output with rich's line wrapping undone."""
    return " ".join(output.split())


def test_cli_send_at_prints_when_in_its_zone_and_utc_and_reschedule_moves_it(
    cli_env: dict[str, str | None], sessions: sessionmaker[Session]
) -> None:
    runner = CliRunner()
    args = ["send", "--sticker-id", STICKER_ID, "--to", A]
    refused = runner.invoke(app, [*args, "--at", "2030-12-01T09:00"], env=cli_env)
    assert refused.exit_code == 2 and "has no time zone" in refused.output
    assert "Traceback" not in refused.output

    sent = runner.invoke(app, [*args, "--at", "2030-12-01T09:00+05:30", "--json"], env=cli_env)
    assert sent.exit_code == 0, sent.output
    result = json.loads(sent.stdout)
    assert result["status"] == "scheduled" and result["timezone"] == "+05:30"
    assert result["scheduled_at_utc"] == "2030-12-01T03:30:00+00:00"

    text = runner.invoke(
        app, [*args, "--at", "2030-12-01T09:00", "--tz", "Asia/Kolkata"], env=cli_env
    )
    assert "2030-12-01 09:00 +05:30 (Asia/Kolkata) = 2030-12-01 03:30 UTC" in flat(text.output)

    moved = runner.invoke(
        app, ["reschedule", str(result["campaign_id"]), "--at", "2030-12-02T10:00Z"], env=cli_env
    )
    assert moved.exit_code == 0, moved.output
    assert "rescheduled for 2030-12-02 10:00 UTC" in flat(moved.output)
    assert campaign_row(sessions, result["campaign_id"]).timezone == "UTC"


def test_cli_every_needs_tz_and_schedules_list_and_stop(
    cli_env: dict[str, str | None], sessions: sessionmaker[Session]
) -> None:
    runner = CliRunner()
    args = ["send", "--sticker-id", STICKER_ID, "--to", A, "--every", "30 8 * * 1"]
    refused = runner.invoke(app, args, env=cli_env)
    assert refused.exit_code == 2 and "--every needs --tz" in refused.output
    made = runner.invoke(app, [*args, "--tz", "Asia/Kolkata"], env=cli_env)
    assert made.exit_code == 0, made.output
    assert "schedule 1 repeats it every '30 8 * * 1' in Asia/Kolkata" in flat(made.output)

    listed = json.loads(runner.invoke(app, ["schedules", "list", "--json"], env=cli_env).stdout)
    assert [(row["schedule_id"], row["every"], row["runs"]) for row in listed] == [
        (1, "30 8 * * 1", 1)
    ]
    assert "+05:30" in str(listed[0]["next_run_local"])
    stopped = runner.invoke(app, ["schedules", "stop", "1"], env=cli_env)
    assert stopped.exit_code == 0 and "schedule 1 stopped" in stopped.output
    with sessions() as session:
        assert session.scalars(select(Message.recipient)).all() == [A]
