"""Operator actions: list pauses, lift one and dispatch the work that waited for it."""

from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from stickerq.audit import Action, record
from stickerq.db import open_sessions
from stickerq.errors import StickerqError
from stickerq.models import Campaign, CampaignSender, Pause
from stickerq.pauses import describe_pause, list_pauses, pause_keys, resume
from stickerq.producer.queue import check_broker, dispatch_campaign
from stickerq.redis_client import Purpose, make_redis
from stickerq.settings import Settings
from stickerq.states import CampaignStatus, PauseScope


class ResumeTargetError(StickerqError):
    """Neither or both of an account and a sender given: which pause to lift is unclear."""


def list_active_pauses(settings: Settings) -> list[dict[str, str]]:
    with open_sessions(settings.database_url) as sessions, sessions() as session:
        return [describe_pause(pause) for pause in list_pauses(session)]


def resume_sending(
    settings: Settings,
    *,
    actor: str,
    account: str | None = None,
    sender: str | None = None,
    within: str | None = None,
) -> tuple[int, int]:
    """Lift the pause of an account (SID) or of a sender; returns (pauses lifted, batches).
    Each pause lifted is recorded in the audit log under `actor`.

    Exactly one of the two is given. A sender's pause is lifted on whichever account holds
    it (a business number belongs to one account); `within` an account only, for a key
    restricted to it. Redis is checked first: without it the
    pause's mirror could not be lifted, nor the work that waited dispatched.
    """
    if (account is None) == (sender is None):
        raise ResumeTargetError(
            "give exactly one of --account SID or --sender +91... (the HTTP API: `account` "
            "or `sender`): which pause to lift"
        )
    check_broker(settings)
    with open_sessions(settings.database_url) as sessions:
        with sessions.begin() as session:
            sids = [account] if account is not None else _sids_of(settings, session, sender)
            if within is not None:
                sids = [sid for sid in sids if sid == within]
            lifted = 0
            for sid in sids:
                lifted_here = resume(session, sid, sender)
                if lifted_here:
                    target = f"sender:{sender}" if sender is not None else f"account:{sid}"
                    record(session, actor, Action.PAUSE_LIFTED, target, sid=sid)
                lifted += lifted_here
            query = select(Campaign.id).where(
                Campaign.sid.in_(sids),
                Campaign.status.in_((CampaignStatus.QUEUED, CampaignStatus.RUNNING)),
            )
            if sender is not None:
                sends_from = select(CampaignSender.campaign_id).where(
                    CampaignSender.sender == sender
                )
                query = query.where(or_(Campaign.sender == sender, Campaign.id.in_(sends_from)))
            campaigns = session.scalars(query).all()
        mirrors = [pause_keys(settings.redis_prefix, sid, sender or "") for sid in sids]
        keys = [sender_key if sender else account_key for account_key, sender_key in mirrors]
        if keys:  # none: `within` an account that is no longer configured
            with make_redis(settings.redis_target, purpose=Purpose.COMMAND) as client:
                client.delete(*keys)
        batches = sum(dispatch_campaign(settings, sessions, campaign) for campaign in campaigns)
    return lifted, batches


def _sids_of(settings: Settings, session: Session, sender: str | None) -> list[str]:
    """The accounts that may hold a pause of `sender`: those whose pause of it is in force,
    and every configured one (a mirror in Redis may be ahead of the database)."""
    paused = session.scalars(
        select(Pause.sid).where(
            Pause.scope == PauseScope.SENDER, Pause.sender == sender, Pause.resumed_at.is_(None)
        )
    ).all()
    return sorted({*paused, *(account.sid for account in settings.all_accounts())})
