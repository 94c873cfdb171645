"""An operator's hold on a campaign: list, show, pause, resume, cancel.

Each change is one conditional UPDATE from the states it is allowed from, so two operators
(or an operator and a worker) never race a campaign into a wrong state. The Redis key
`campaign_pause_key` is written inside that transaction, after the UPDATE has locked the row
and before the commit: a concurrent resume waits for the lock and deletes the key only after,
so the key always ends up saying what the committed status says. The CLI (and the HTTP API)
call these functions.
"""

from __future__ import annotations

import logging
import re
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

import redis
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from stickerq.audit import Action, campaign_target, record
from stickerq.campaign_status import Move, complete_if_settled, move_campaign, starts
from stickerq.db import open_sessions
from stickerq.errors import CampaignNotFound, ServiceUnavailable, StickerqError
from stickerq.keys import campaign_pause_key
from stickerq.message_status import MessageMove, end_unsent
from stickerq.models import Campaign, utcnow
from stickerq.pauses import campaign_pauses, campaign_senders, resume_command
from stickerq.producer.pace import Pace, campaign_pace
from stickerq.producer.progress import CampaignProgress, campaign_progress
from stickerq.producer.queue import check_broker, dispatch_campaign
from stickerq.producer.schedule import ScheduleError, zone_named
from stickerq.redis_client import Purpose, make_redis
from stickerq.settings import Settings
from stickerq.states import CampaignStatus, PauseScope

log = logging.getLogger(__name__)

DEFAULT_PAUSE_REASON = "paused by an operator"
PAUSE_REASON_MAX = 500  # shown by list and show: a line, not a document
UTC_ZONE = ZoneInfo("UTC")


class CampaignStateError(StickerqError):
    """The campaign is in a state this action cannot start from."""


class PauseReasonError(StickerqError):
    """A pause reason that cannot be stored or shown: NUL, bytes not UTF-8, or too long."""


class UnknownCampaignStatus(StickerqError):
    """A status filter that is not a campaign status."""


@dataclass(frozen=True, slots=True)
class CampaignSummary:
    """One row of `campaigns list`: scheduled time in UTC and in the user's zone."""

    campaign_id: int
    name: str
    status: str
    sender: str
    recipients: int
    scheduled_at: datetime | None
    timezone: str | None
    created_at: datetime
    pause_reason: str | None

    @property
    def scheduled_local(self) -> datetime | None:
        return in_zone(self.scheduled_at, self.timezone)


@dataclass(frozen=True, slots=True)
class CampaignDetails:
    """`campaigns show`: every field of the campaign and where its messages stand."""

    summary: CampaignSummary
    sid: str
    sticker_id: str | None
    sticker_link: str | None
    wa_source: str
    ref: str | None
    ref1: str | None
    ref2: str | None
    started_at: datetime | None
    finished_at: datetime | None
    schedule_id: int | None
    suppressed_at_enqueue: int
    progress: CampaignProgress
    pace: Pace
    valid_until: datetime | None = None  # its unsent messages expire then (producer/validity.py)
    senders: list[str] = field(default_factory=list)  # the numbers its messages go out from
    in_window: bool = False  # sent only inside its recipients' windows (`send --in-window`)


@dataclass(frozen=True, slots=True)
class LifecycleResult:
    """What a pause, resume or cancel did (changed=False: it was already so)."""

    campaign_id: int
    action: str
    status: str
    changed: bool
    message: str
    batches: int = 0
    cancelled_messages: int = 0
    warnings: list[str] = field(default_factory=list)


def list_campaigns(
    sessions: sessionmaker[Session],
    *,
    status: str | None = None,
    limit: int,
    offset: int = 0,
    sid: str | None = None,
) -> list[CampaignSummary]:
    """Up to `limit` campaigns, newest first; scheduled campaigns (status="scheduled") in the
    order they will go. `sid`: of that account only (a key restricted to it)."""
    query = select(Campaign)
    if sid is not None:
        query = query.where(Campaign.sid == sid)
    if status is not None:
        if status not in set(CampaignStatus):
            known = ", ".join(CampaignStatus)
            raise UnknownCampaignStatus(f"unknown campaign status {status!r}; use one of {known}")
        query = query.where(Campaign.status == status)
    if status == CampaignStatus.SCHEDULED:
        query = query.order_by(Campaign.scheduled_at, Campaign.id)
    else:
        query = query.order_by(Campaign.id.desc())
    with sessions() as session:
        page = query.limit(max(limit, 1)).offset(max(offset, 0))
        return [_summary(c) for c in session.scalars(page)]


def show_campaign(sessions: sessionmaker[Session], campaign_id: int) -> CampaignDetails:
    with sessions() as session:
        campaign = _get(session, campaign_id)
        progress = campaign_progress(session, campaign_id)
        return CampaignDetails(
            summary=_summary(campaign),
            sid=campaign.sid,
            sticker_id=campaign.sticker_id,
            sticker_link=campaign.sticker_link,
            wa_source=campaign.wa_source,
            ref=campaign.ref,
            ref1=campaign.ref1,
            ref2=campaign.ref2,
            started_at=campaign.started_at,
            finished_at=campaign.finished_at,
            schedule_id=campaign.schedule_id,
            suppressed_at_enqueue=campaign.suppressed_count,
            progress=progress,
            pace=campaign_pace(progress, campaign.started_at, campaign.finished_at),
            valid_until=campaign.valid_until,
            in_window=campaign.in_window,
            senders=campaign_senders(session, campaign),
        )


def pause_campaign(
    settings: Settings,
    campaign_id: int,
    reason: str | None = None,
    *,
    actor: str,
    sessions: sessionmaker[Session] | None = None,
) -> LifecycleResult:
    """queued/running → paused: no batch claims more, and in-flight batches stop sending.
    `actor` (who asks: the audit log's name) is recorded when the campaign was not paused."""
    reason = _checked_reason(reason) or DEFAULT_PAUSE_REASON
    warnings: list[str] = []
    with open_sessions(settings.database_url, sessions) as factory, factory.begin() as session:
        changed = move_campaign(session, campaign_id, Move.PAUSE, pause_reason=reason)
        campaign = _get(session, campaign_id, lock=True)
        if not changed and campaign.status != CampaignStatus.PAUSED:
            raise _refusal(campaign, "paused", (*starts(Move.PAUSE), CampaignStatus.PAUSED))
        if changed:
            record(
                session, actor, Action.CAMPAIGN_PAUSED, campaign_target(campaign_id), reason=reason
            )
        # Also on a no-op: a lost key (Redis flushed) is written again.
        _set_key(settings, campaign_id, CampaignStatus.PAUSED, warnings)
        current_reason = campaign.pause_reason
    message = (
        f"campaign {campaign_id} paused: {reason}"
        if changed
        else f"campaign {campaign_id} is already paused ({current_reason}); nothing changed"
    )
    return LifecycleResult(
        campaign_id, "pause", CampaignStatus.PAUSED, changed, message, warnings=warnings
    )


def _checked_reason(reason: str | None) -> str | None:
    """The reason, refused where no database column takes it (a NUL; a lone surrogate, what
    a byte that was not UTF-8 in argv becomes) or longer than PAUSE_REASON_MAX."""
    if reason is None:
        return None
    if len(reason) > PAUSE_REASON_MAX or re.search(r"[\x00\ud800-\udfff]", reason):
        raise PauseReasonError(
            f"the pause reason must be at most {PAUSE_REASON_MAX} characters of text, without "
            "NUL: e.g. --reason 'wrong sticker'"
        )
    return reason


def resume_campaign(
    settings: Settings,
    campaign_id: int,
    *,
    actor: str,
    sessions: sessionmaker[Session] | None = None,
) -> LifecycleResult:
    """paused → running (queued if nothing was ever claimed); dispatch what is left.

    Also lifts a pause the worker made itself (a run of WA400s): the streak starts again.
    """
    check_broker(settings)
    warnings: list[str] = []
    with open_sessions(settings.database_url, sessions) as factory:
        with factory.begin() as session:
            changed = move_campaign(
                session, campaign_id, Move.RESUME, pause_reason=None, wa400_streak=0
            )
            campaign = _get(session, campaign_id, lock=True)
            if not changed and campaign.status not in starts(Move.PAUSE):
                raise _refusal(campaign, "resumed", starts(Move.RESUME))
            if changed:
                record(session, actor, Action.CAMPAIGN_RESUMED, campaign_target(campaign_id))
            _delete_key(settings, campaign_id)  # before the commit: see the module docstring
            status = campaign.status
            blocking = campaign_pauses(session, campaign)
        if not changed:
            message = f"campaign {campaign_id} is {status}, not paused; nothing changed"
            return LifecycleResult(campaign_id, "resume", status, False, message)
        batches = dispatch_campaign(settings, factory, campaign_id)
        if batches == 0:  # everything settled while it was paused
            with factory.begin() as session:
                if complete_if_settled(session, campaign_id):
                    status = CampaignStatus.COMPLETED
    for pause in blocking:
        lift = resume_command(pause.scope, pause.sid, pause.sender)
        held = "nothing goes" if pause.scope == PauseScope.ACCOUNT else "its messages wait"
        warnings.append(
            f"{pause.scope} {pause.sender or pause.sid} is still paused after "
            f"{pause.code}: {held} until `{lift}`"
        )
    message = f"campaign {campaign_id} resumed ({status}); {batches} batch(es) dispatched"
    return LifecycleResult(
        campaign_id, "resume", status, True, message, batches=batches, warnings=warnings
    )


def cancel_campaign(
    settings: Settings,
    campaign_id: int,
    *,
    actor: str,
    sessions: sessionmaker[Session] | None = None,
) -> LifecycleResult:
    """Cancel a campaign not yet finished: every `pending` message becomes `cancelled`.

    Messages already `sending` are left to their worker, which records what it sent.
    """
    warnings: list[str] = []
    with open_sessions(settings.database_url, sessions) as factory, factory.begin() as session:
        # Messages before the campaign row: the order a claim locks them in, so the two
        # cannot deadlock. A batch that claimed first keeps its messages (its worker records
        # them); one that comes after finds nothing pending.
        cancelled = end_unsent(session, MessageMove.CANCEL, campaign_id)
        changed = move_campaign(session, campaign_id, Move.CANCEL, finished_at=utcnow())
        campaign = _get(session, campaign_id, lock=True)
        if not changed and campaign.status != CampaignStatus.CANCELLED:
            # the refusal rolls the messages back too
            raise _refusal(campaign, "cancelled", starts(Move.CANCEL))
        if changed or cancelled:
            target = campaign_target(campaign_id)
            record(session, actor, Action.CAMPAIGN_CANCELLED, target, messages=cancelled or 0)
        _set_key(settings, campaign_id, CampaignStatus.CANCELLED, warnings)
    if changed:
        message = f"campaign {campaign_id} cancelled: {cancelled:,} unsent message(s) cancelled"
    elif cancelled:  # released to `pending` by a batch that ran on after the cancel
        message = f"campaign {campaign_id} was already cancelled; {cancelled:,} more cancelled"
    else:
        message = f"campaign {campaign_id} is already cancelled; nothing changed"
    return LifecycleResult(
        campaign_id,
        "cancel",
        CampaignStatus.CANCELLED,
        changed,
        message,
        cancelled_messages=cancelled or 0,
        warnings=warnings,
    )


def in_zone(moment: datetime | None, zone: str | None) -> datetime | None:
    """The UTC moment in the campaign's zone or fixed offset (`+05:30`, as `send --at` keeps
    one given without --tz); UTC when it has none or an unknown one."""
    if moment is None:
        return None
    try:
        return moment.astimezone(zone_named(zone) if zone else UTC_ZONE)
    except ScheduleError:
        return moment.astimezone(UTC_ZONE)


def _get(session: Session, campaign_id: int, *, lock: bool = False) -> Campaign:
    """The campaign as committed now; `lock` holds its row to the commit, so that even a
    no-op's write of the Redis key cannot race a concurrent change of status."""
    campaign = session.get(Campaign, campaign_id, populate_existing=True, with_for_update=lock)
    if campaign is None:
        raise CampaignNotFound(
            f"no campaign {campaign_id}; `stickerq campaigns list` shows the campaigns"
        )
    return campaign


def _refusal(campaign: Campaign, done: str, allowed: tuple[CampaignStatus, ...]) -> StickerqError:
    names = [status.value for status in allowed]
    listed = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
    hint = ""
    if campaign.status == CampaignStatus.SCHEDULED and done == "paused":
        hint = " (it has not started: cancel or reschedule it instead)"
    return CampaignStateError(
        f"campaign {campaign.id} is {campaign.status}; only {listed} campaigns can be {done}{hint}"
    )


def _summary(campaign: Campaign) -> CampaignSummary:
    return CampaignSummary(
        campaign_id=campaign.id,
        name=campaign.name,
        status=campaign.status,
        sender=campaign.sender,
        recipients=campaign.recipient_count,
        scheduled_at=campaign.scheduled_at,
        timezone=campaign.timezone,
        created_at=campaign.created_at,
        pause_reason=campaign.pause_reason,
    )


def _redis(settings: Settings) -> redis.Redis:
    return make_redis(settings.redis_target, purpose=Purpose.COMMAND)


def _set_key(settings: Settings, campaign_id: int, status: str, warnings: list[str]) -> None:
    """Stop in-flight batches. Without Redis the database still stops every new claim."""
    try:
        with closing(_redis(settings)) as client:
            client.set(campaign_pause_key(settings.redis_prefix, campaign_id), status)
    except redis.RedisError as exc:
        log.warning("campaign %s: could not set its pause key in Redis: %s", campaign_id, exc)
        warnings.append(
            f"Redis is unreachable ({exc}): no new batch starts, but batches already sending "
            "finish their messages"
        )


def _delete_key(settings: Settings, campaign_id: int) -> None:
    try:
        with closing(_redis(settings)) as client:
            client.delete(campaign_pause_key(settings.redis_prefix, campaign_id))
    except redis.RedisError as exc:
        raise ServiceUnavailable(
            f"campaign {campaign_id} stays paused: Redis is unreachable ({exc}); start it and "
            "resume again"
        ) from exc
