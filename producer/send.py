"""What `stickerq send` (and the HTTP API) does: a campaign sent now, at a time, or recurring.

The one place that reads a `Timing` and picks the store: enqueue_campaign (dispatched now),
schedule_campaign (`scheduled` at `at`) or create_schedule (a run at every `every` time).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from stickerq.producer.api import EnqueueResult, enqueue_campaign
from stickerq.producer.request import CampaignRequest, Timing
from stickerq.producer.schedule import (
    ScheduledCampaign,
    ScheduleError,
    create_schedule,
    schedule_campaign,
    zone_named,
)
from stickerq.settings import Settings


def send_campaign(
    settings: Settings,
    request: CampaignRequest,
    timing: Timing = Timing(),
    *,
    sessions: sessionmaker[Session] | None = None,
    actor: str | None = None,
) -> tuple[EnqueueResult, ScheduledCampaign | None]:
    """Store the campaign and dispatch it now, or leave it scheduled for beat.

    Returns what was stored, and when it goes if it was scheduled (None: dispatched now).
    A timing that mixes its options wrongly raises ScheduleError before anything is read.
    `actor`: who asks (the audit log's name); None: this machine's user.
    """
    request = _valid_until_in_zone(request, timing.tz)
    if timing.every is not None:
        if timing.at is not None:
            raise ScheduleError(
                "--at and --every do not go together: the cron expression gives the times "
                "(the first run is its next time)"
            )
        if timing.tz is None:
            raise ScheduleError(
                "--every needs --tz, the zone its times are read in, e.g. --tz Asia/Kolkata"
            )
        scheduled = create_schedule(
            settings, request, every=timing.every, tz=timing.tz, sessions=sessions, actor=actor
        )
    elif timing.at is not None:
        scheduled = schedule_campaign(
            settings,
            request,
            at=timing.at,
            tz=timing.tz,
            now_if_past=timing.now_if_past,
            sessions=sessions,
            actor=actor,
        )
    elif timing.now_if_past or (timing.tz is not None and request.valid_until is None):
        raise ScheduleError(
            "--tz and --now-if-past only go with --at (or --tz with --every or --valid-until)"
        )
    else:
        return enqueue_campaign(settings, request, sessions=sessions, actor=actor), None
    return scheduled.result, scheduled


def _valid_until_in_zone(request: CampaignRequest, tz: str | None) -> CampaignRequest:
    """A --valid-until given without an offset is read in --tz, like --at."""
    value = request.valid_until
    if tz is None or value is None:
        return request
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            return request  # producer.validity says what is wrong with it
    if value.tzinfo is not None:
        return request
    return replace(request, valid_until=value.replace(tzinfo=zone_named(tz)))
