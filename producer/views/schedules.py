"""The JSON of `reschedule` and `schedules list`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Self

from pydantic import Field

from stickerq.producer.schedule import zone_named
from stickerq.producer.views.base import CampaignId, Time, View, Zone

if TYPE_CHECKING:
    from stickerq.models import Schedule
    from stickerq.producer.schedule import When


class RescheduleView(View):
    """A scheduled campaign moved to another time."""

    campaign_id: CampaignId
    scheduled_at_utc: Annotated[Time, Field(description="when it goes now, in UTC")]
    scheduled_at_local: Annotated[Time, Field(description="the same moment in `timezone`")]
    timezone: Zone

    @classmethod
    def of_when(cls, campaign_id: int, when: When) -> Self:
        return cls(
            campaign_id=campaign_id,
            scheduled_at_utc=when.utc,
            scheduled_at_local=when.local,
            timezone=when.zone,
        )


class ScheduleView(View):
    """A recurring broadcast (`send --every`): its cron, zone, next run and runs so far."""

    schedule_id: Annotated[int, Field(description="what `schedules stop` takes")]
    name: Annotated[str, Field(description="the name of its campaigns")]
    every: Annotated[str, Field(description="its cron expression, read in `timezone`")]
    timezone: Annotated[str, Field(description="the IANA zone of its cron times")]
    active: Annotated[bool, Field(description="false once stopped: it makes no more runs")]
    next_run_utc: Annotated[Time | None, Field(description="the next run, in UTC")]
    next_run_local: Annotated[Time | None, Field(description="the same moment in `timezone`")]
    last_run_utc: Annotated[Time | None, Field(description="the latest run made, in UTC")]
    template_campaign_id: Annotated[
        int | None, Field(description="its first run, whose recipients every run copies")
    ]
    runs: Annotated[int, Field(description="campaigns it has made, the first included")]

    @classmethod
    def of_schedule(cls, schedule: Schedule, runs: int) -> Self:
        next_run = schedule.next_run_at
        return cls(
            schedule_id=schedule.id,
            name=schedule.name,
            every=schedule.cron,
            timezone=schedule.timezone,
            active=schedule.active,
            next_run_utc=next_run,
            next_run_local=next_run.astimezone(zone_named(schedule.timezone)) if next_run else None,
            last_run_utc=schedule.last_run_at,
            template_campaign_id=schedule.template_campaign_id,
            runs=runs,
        )
