"""send_campaign: one request dispatched now, scheduled at a time, or made a recurring
schedule, as its Timing says; a Timing that mixes its options wrongly stores nothing."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session, sessionmaker

from stickerq.models import Campaign
from stickerq.producer.request import CampaignRequest, Timing
from stickerq.producer.schedule import ScheduleError
from stickerq.producer.send import send_campaign
from stickerq.settings import Settings
from stickerq.states import CampaignStatus
from tests.conftest import STICKER_ID, make_settings
from tests.helpers import stored_counts

UNREACHABLE_API = "http://127.0.0.1:9"  # no worker runs here: nothing is ever sent
REQUEST = CampaignRequest(sticker_id=STICKER_ID, to="+919812345670,+919812345671")


@pytest.fixture
def send_settings(database_url: str, redis_prefix: str) -> Settings:
    return make_settings(database_url, redis_prefix, UNREACHABLE_API)


def status_of(sessions: sessionmaker[Session], campaign_id: int) -> str | None:
    with sessions() as session:
        campaign = session.get(Campaign, campaign_id)
        return None if campaign is None else campaign.status


def test_no_timing_dispatches_now_at_schedules_once_every_schedules_runs(
    send_settings: Settings, sessions: sessionmaker[Session]
) -> None:
    now, not_scheduled = send_campaign(send_settings, REQUEST, sessions=sessions)
    assert not_scheduled is None and now.batches == 1
    assert status_of(sessions, now.campaign_id) == CampaignStatus.QUEUED

    at = Timing(at="2030-12-01T09:00", tz="Asia/Kolkata")
    once, scheduled = send_campaign(send_settings, REQUEST, at, sessions=sessions)
    assert scheduled is not None and scheduled.schedule_id is None and once.batches == 0
    assert scheduled.when.describe().startswith("2030-12-01 09:00 +05:30 (Asia/Kolkata)")
    assert status_of(sessions, once.campaign_id) == CampaignStatus.SCHEDULED

    every = Timing(every="0 9 * * 1", tz="Asia/Kolkata")
    first, recurring = send_campaign(send_settings, REQUEST, every, sessions=sessions)
    assert recurring is not None and recurring.schedule_id is not None
    assert recurring.cron == "0 9 * * 1"
    assert status_of(sessions, first.campaign_id) == CampaignStatus.SCHEDULED


@pytest.mark.parametrize(
    ("timing", "problem"),
    [
        (Timing(at="2030-12-01T09:00Z", every="0 9 * * 1", tz="UTC"), "do not go together"),
        (Timing(every="0 9 * * 1"), "--every needs --tz, the zone its times are read in"),
        (Timing(tz="Asia/Kolkata"), "--tz and --now-if-past only go with --at"),
        (Timing(now_if_past=True), "--tz and --now-if-past only go with --at"),
    ],
    ids=["at-and-every", "every-without-tz", "tz-alone", "now-if-past-alone"],
)
def test_timing_that_mixes_its_options_wrongly_is_refused_and_nothing_is_stored(
    send_settings: Settings, sessions: sessionmaker[Session], timing: Timing, problem: str
) -> None:
    with pytest.raises(ScheduleError, match=problem):
        send_campaign(send_settings, REQUEST, timing, sessions=sessions)
    assert stored_counts(send_settings) == (0, 0)
