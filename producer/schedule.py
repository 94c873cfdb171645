"""Scheduled and recurring campaigns: validate the time, store the campaign `scheduled`.

Nothing is dispatched here and nothing waits in Redis: beat's `dispatch_due_campaigns`
(worker/scheduling.py) queues a campaign once its `scheduled_at` (UTC) has come.

A time is ISO 8601 with an offset (`2026-12-01T09:00+05:30`), or without one plus a zone
(`--tz Asia/Kolkata`). A local time that a DST change skips or repeats is refused, with the
fix in the message. `Campaign.timezone` keeps the zone for display: an IANA name, or a fixed
offset such as `+05:30` when only an offset was given (`zone_named` reads both).

Recurring broadcasts (`every`, a cron expression read in an IANA zone): the audience is
**frozen** when the schedule is made. Its recipients are validated and stored once, as the
first run (a normal scheduled campaign at the first cron time, the schedule's template);
each later run copies the template's messages (recipient, ref, ref1, ref2) with one
INSERT ... SELECT. Frozen, because a run then never fails on a file that moved or changed,
and every run of a schedule sends to the same validated list. To change the audience, stop
the schedule and make a new one.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError
from sqlalchemy import event, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from stickerq.actors import cli_actor
from stickerq.audit import Action, campaign_target, record
from stickerq.cron import next_run, wall_time_exists
from stickerq.db import open_sessions, rows_changed
from stickerq.errors import StickerqError, excerpt
from stickerq.models import Campaign, Schedule, utcnow
from stickerq.producer.api import EnqueueResult, enqueue_campaign
from stickerq.producer.cron_check import cron_problem
from stickerq.producer.request import CampaignRequest
from stickerq.producer.time_reach import check_reach
from stickerq.producer.validity import Validity, check_start, read_validity
from stickerq.settings import Settings
from stickerq.states import CampaignStatus

EXAMPLE = "2026-12-01T09:00+05:30, or 2026-12-01T09:00 with --tz Asia/Kolkata"
ZONE_MAX = 64  # Campaign.timezone and Schedule.timezone are String(64)


class ScheduleError(StickerqError):
    """A scheduled time, zone or cron expression is wrong, or the campaign can't be moved."""


@dataclass(frozen=True, slots=True)
class When:
    """A moment to send: `utc`, and the zone (IANA name or `+05:30`) it was given in."""

    utc: datetime
    zone: str
    moved_from_past: bool = False  # it was in the past and --now-if-past made it now

    @property
    def local(self) -> datetime:
        return self.utc.astimezone(zone_named(self.zone))

    def describe(self) -> str:
        """`2026-12-01 09:00 +05:30 (Asia/Kolkata) = 2026-12-01 03:30 UTC`"""
        if self.zone == "UTC":
            return f"{_clock(self.utc)} UTC"
        label = "" if self.zone.startswith(("+", "-")) else f" ({self.zone})"
        return f"{_clock(self.local)} {_offset(self.local)}{label} = {_clock(self.utc)} UTC"


@dataclass(frozen=True, slots=True)
class ScheduledCampaign:
    """What `schedule_campaign` and `create_schedule` stored."""

    result: EnqueueResult
    when: When
    schedule_id: int | None = None
    cron: str | None = None

    @property
    def campaign_id(self) -> int:
        return self.result.campaign_id


def zone_named(name: str) -> tzinfo:
    """An IANA zone (`Asia/Kolkata`, `UTC`) or a fixed offset (`+05:30`)."""
    zone = _read_zone(name) if len(name) <= ZONE_MAX else None
    if zone is None:
        raise ScheduleError(
            f"unknown time zone {excerpt(name)!r}: give an IANA name such as Asia/Kolkata, "
            "Europe/Berlin or UTC (`timedatectl list-timezones` lists them)"
        )
    return zone


def _read_zone(name: str) -> tzinfo | None:
    """The zone, or None. ZoneInfo opens a file named after the zone: a name too long for a
    file name, or naming a folder (`America`), raises OSError, which means unknown too."""
    try:
        if name.startswith(("+", "-")):
            return datetime.fromisoformat(f"2000-01-01T00:00{name}").tzinfo or UTC
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


def parse_when(
    at: str | datetime,
    tz: str | None = None,
    *,
    now_if_past: bool = False,
    now: datetime | None = None,
) -> When:
    """Read a send time; refuse one without a zone, one a DST change skips or repeats, and
    one in the past (unless now_if_past: then it is now).

    Typed text with both an offset and `tz` must agree; an aware datetime is an instant,
    and `tz` then only says the zone to show it in.
    """
    moment = _parse_iso(at) if isinstance(at, str) else at
    now = now or utcnow()
    check_reach(moment, f"--at {_shown(at)}", ScheduleError, now)
    if moment.tzinfo is None:
        if tz is None:
            raise ScheduleError(
                f"--at {_shown(at)} has no time zone: add its offset or a zone, e.g. {EXAMPLE}"
            )
        moment = _localize(moment, zone_named(tz), tz)
    elif tz is not None:
        zone_named(tz)
        if isinstance(at, str):
            _check_agrees(moment, zone_named(tz), at, tz)
    zone = tz or _offset_name(moment)
    utc = moment.astimezone(UTC)
    if utc >= now:
        return When(utc, zone)
    if now_if_past:
        return When(now, zone, moved_from_past=True)
    raise ScheduleError(
        f"--at {_shown(at)} is in the past (it is now {_clock(now)} UTC): give a later time, "
        "or pass --now-if-past to send at once"
    )


def schedule_campaign(
    settings: Settings,
    request: CampaignRequest,
    *,
    at: str | datetime,
    tz: str | None = None,
    now_if_past: bool = False,
    sessions: sessionmaker[Session] | None = None,
    actor: str | None = None,
) -> ScheduledCampaign:
    """Validate and store a campaign `scheduled` at `at`; beat dispatches it then. `actor`:
    who asks (the audit log's name); None: this machine's user."""
    when = parse_when(at, tz, now_if_past=now_if_past)
    check_start(read_validity(request.valid_for, request.valid_until), when.utc)
    result, _ = _store_scheduled(settings, sessions, request, when, actor=actor)
    return ScheduledCampaign(result, when)


def create_schedule(
    settings: Settings,
    request: CampaignRequest,
    *,
    every: str,
    tz: str,
    sessions: sessionmaker[Session] | None = None,
    actor: str | None = None,
) -> ScheduledCampaign:
    """A recurring broadcast: the campaign (first run, and template of the later runs) is
    stored `scheduled` at the cron expression's next time in `tz`. The audit log records the
    campaign and the schedule under `actor` (None: this machine's user); its later runs,
    made by beat, are no one's change and are not recorded."""
    first = first_run(every, tz)
    check_start(read_validity(request.valid_for, request.valid_until), first.utc, recurring=True)
    result, schedule_id = _store_scheduled(
        settings, sessions, request, first, cron=every, actor=actor
    )
    return ScheduledCampaign(result, first, schedule_id, every)


def first_run(every: str, tz: str, now: datetime | None = None) -> When:
    """When a recurring broadcast first runs: the cron expression's next time after `now`,
    read in the IANA zone `tz`; raises ScheduleError for an expression that never fires."""
    if not _is_iana(tz):
        raise ScheduleError(
            f"--every needs --tz with an IANA zone (e.g. Asia/Kolkata), not {excerpt(tz)!r}: "
            "the cron times are read in that zone, its DST changes included"
        )
    problem = cron_problem(every)
    if problem is not None:
        raise ScheduleError(problem)
    try:
        return When(next_run(every, ZoneInfo(tz), now or utcnow()), tz)
    except CroniterBadDateError:  # `0 0 31 2 *`: no 31st of February
        raise ScheduleError(
            f"--every {excerpt(every)!r} never fires: no date matches its day-of-month, "
            "month and day-of-week; check them"
        ) from None


def reschedule(
    settings: Settings,
    campaign_id: int,
    at: str | datetime,
    tz: str | None = None,
    *,
    now_if_past: bool = False,
    actor: str,
    sessions: sessionmaker[Session] | None = None,
) -> When:
    """Move a campaign that is still `scheduled` (a time without a zone is read in the
    campaign's own zone); refused once it was dispatched or cancelled. Recorded in the audit
    log under `actor`."""
    with _factory(settings, sessions) as factory:
        with factory() as session:
            campaign = session.get(Campaign, campaign_id)
        if campaign is None:
            raise ScheduleError(f"no campaign {campaign_id}: `stickerq campaigns list` shows them")
        naive = isinstance(at, str) and _parse_iso(at).tzinfo is None
        if tz is None and naive and campaign.timezone:
            tz = campaign.timezone
        when = parse_when(at, tz, now_if_past=now_if_past)
        deadline = _moved_deadline(campaign, when)
        with factory.begin() as session:
            moved = rows_changed(
                session.execute(
                    update(Campaign)
                    .where(Campaign.id == campaign_id, Campaign.status == CampaignStatus.SCHEDULED)
                    .values(scheduled_at=when.utc, timezone=when.zone, valid_until=deadline),
                    execution_options={"synchronize_session": False},
                )
            )
            status = session.scalar(select(Campaign.status).where(Campaign.id == campaign_id))
            if moved:
                record(
                    session,
                    actor,
                    Action.CAMPAIGN_RESCHEDULED,
                    campaign_target(campaign_id),
                    scheduled_at=when.utc,
                    timezone=when.zone,
                )
    if not moved:
        raise ScheduleError(
            f"campaign {campaign_id} is {status}, no longer scheduled: only a campaign that "
            "has not been dispatched yet can be rescheduled"
        )
    return when


def _moved_deadline(campaign: Campaign, when: When) -> datetime | None:
    """A --valid-for deadline moves with the campaign's time; a --valid-until one stays."""
    if campaign.valid_for_seconds is not None:
        return when.utc + timedelta(seconds=campaign.valid_for_seconds)
    check_start(Validity(valid_until=campaign.valid_until), when.utc)
    return campaign.valid_until


def list_schedules(
    settings: Settings, sessions: sessionmaker[Session] | None = None
) -> list[tuple[Schedule, int]]:
    """Every recurring schedule, and the runs (campaigns) it has made so far."""
    runs = (
        select(func.count(Campaign.id)).where(Campaign.schedule_id == Schedule.id)
    ).scalar_subquery()
    with _factory(settings, sessions) as factory, factory() as session:
        rows = session.execute(select(Schedule, runs).order_by(Schedule.id)).all()
    return [(schedule, count) for schedule, count in rows]


def stop_schedule(
    settings: Settings,
    schedule_id: int,
    sessions: sessionmaker[Session] | None = None,
    *,
    actor: str,
) -> tuple[bool, list[int]]:
    """Create no more runs; returns (stopped now, not already), and the ids of runs that are
    still scheduled (they go unless cancelled). Recorded in the audit log under `actor`."""
    with _factory(settings, sessions) as factory, factory.begin() as session:
        if session.get(Schedule, schedule_id) is None:
            raise ScheduleError(f"no schedule {schedule_id}: `stickerq schedules list` shows them")
        stopped = rows_changed(
            session.execute(
                update(Schedule)
                .where(Schedule.id == schedule_id, Schedule.active.is_(True))
                .values(active=False, next_run_at=None),
                execution_options={"synchronize_session": False},
            )
        )
        waiting = session.scalars(
            select(Campaign.id)
            .where(
                Campaign.schedule_id == schedule_id,
                Campaign.status == CampaignStatus.SCHEDULED,
            )
            .order_by(Campaign.scheduled_at)
        ).all()
        if stopped:
            record(
                session,
                actor,
                Action.SCHEDULE_STOPPED,
                f"schedule:{schedule_id}",
                runs_still_scheduled=list(waiting),
            )
    return bool(stopped), list(waiting)


def _store_scheduled(
    settings: Settings,
    sessions: sessionmaker[Session] | None,
    request: CampaignRequest,
    when: When,
    *,
    cron: str | None = None,
    actor: str | None = None,
) -> tuple[EnqueueResult, int | None]:
    """enqueue_campaign's validation and store, with status `scheduled` and no dispatch.

    The store's own transaction also stamps the time (and makes the schedule), just before
    it commits: no one ever sees a scheduled campaign without its time.
    """
    actor = actor or cli_actor()
    made: list[int] = []

    def stamp(session: Session) -> None:
        for row in list(session.identity_map.values()):
            if isinstance(row, Campaign) and row.status == CampaignStatus.SCHEDULED:
                if row.scheduled_at is None:
                    row.scheduled_at, row.timezone = when.utc, when.zone
                if row.valid_for_seconds is not None and row.valid_until is None:
                    # counted from the campaign's time, not from now (producer/validity.py)
                    row.valid_until = when.utc + timedelta(seconds=row.valid_for_seconds)
                if cron is not None and row.schedule_id is None:
                    row.schedule_id = _add_schedule(session, row, cron, when, actor)
                    made.append(row.schedule_id)

    with _factory(settings, sessions) as factory:
        stamping = sessionmaker(class_=factory.class_, **factory.kw)
        event.listen(stamping, "before_commit", stamp)
        result = enqueue_campaign(
            settings, request, sessions=stamping, status=CampaignStatus.SCHEDULED, actor=actor
        )
    return result, (made[0] if made else None)


def _add_schedule(session: Session, template: Campaign, cron: str, first: When, actor: str) -> int:
    zone = ZoneInfo(first.zone)
    schedule = Schedule(
        name=template.name,
        cron=cron,
        timezone=first.zone,
        template_campaign_id=template.id,
        next_run_at=next_run(cron, zone, first.utc),
        last_run_at=first.utc,
        active=True,
    )
    session.add(schedule)
    session.flush()
    record(
        session,
        actor,
        Action.SCHEDULE_CREATED,
        f"schedule:{schedule.id}",
        cron=cron,
        timezone=first.zone,
        first_run=first.utc,
        template=campaign_target(template.id),
    )
    return schedule.id


@contextmanager
def _factory(
    settings: Settings, sessions: sessionmaker[Session] | None
) -> Iterator[sessionmaker[Session]]:
    """The caller's session factory, or one on settings.database_url closed afterwards."""
    with open_sessions(settings.database_url, sessions) as factory:
        yield factory


def _parse_iso(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text.strip())
    except ValueError:
        raise ScheduleError(
            f"--at {excerpt(text)!r} is not a time: write ISO 8601, e.g. {EXAMPLE}"
        ) from None


def _is_iana(name: str) -> bool:
    return not name.startswith(("+", "-")) and isinstance(zone_named(name), ZoneInfo)


def _localize(naive: datetime, zone: tzinfo, tz: str) -> datetime:
    """The naive time in `zone`, refusing one a DST change skips or repeats."""
    early, late = naive.replace(tzinfo=zone, fold=0), naive.replace(tzinfo=zone, fold=1)
    if early.utcoffset() == late.utcoffset():
        return early
    if not wall_time_exists(early):
        after = early.astimezone(UTC).astimezone(zone)
        raise ScheduleError(
            f"{_clock(naive)} does not exist in {tz}: the clocks skip it when daylight saving "
            f"time starts. Pick a time outside the jump, e.g. {_clock(after)}"
        )
    raise ScheduleError(
        f"{_clock(naive)} happens twice in {tz} (at {_offset(early)} and {_offset(late)}, "
        f"when the clocks go back). Say which with its offset, e.g. --at "
        f"{naive:%Y-%m-%dT%H:%M}{_offset(early)} --tz {tz}"
    )


def _check_agrees(moment: datetime, zone: tzinfo, at: str | datetime, tz: str) -> None:
    expected = moment.astimezone(zone)
    if expected.utcoffset() != moment.utcoffset():
        raise ScheduleError(
            f"--at {_shown(at)} has offset {_offset(moment)} but {tz} is at "
            f"{_offset(expected)} then: drop the offset or --tz, or make them agree"
        )


def _offset(moment: datetime) -> str:
    offset = moment.utcoffset() or timedelta(0)
    sign, minutes = ("-" if offset < timedelta(0) else "+"), abs(int(offset.total_seconds())) // 60
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def _offset_name(moment: datetime) -> str:
    """The zone of an aware time given without --tz: its IANA name if it has one, else
    its offset (`+05:30`); UTC for +00:00."""
    if isinstance(moment.tzinfo, ZoneInfo):
        return moment.tzinfo.key
    if moment.utcoffset() == timedelta(0):
        return "UTC"
    return _offset(moment)


def _clock(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M}" + (f":{moment:%S}" if moment.second else "")


def _shown(at: str | datetime) -> str:
    return excerpt(at) if isinstance(at, str) else at.isoformat()
