"""Operator actions: list pauses, lift one and dispatch the work that waited for it."""

from __future__ import annotations

import redis
from sqlalchemy import or_, select

from stickerq.db import open_sessions
from stickerq.errors import StickerqError
from stickerq.models import Campaign, CampaignSender
from stickerq.pauses import describe_pause, list_pauses, pause_keys, resume
from stickerq.producer.queue import check_broker, dispatch_campaign
from stickerq.settings import Settings
from stickerq.states import CampaignStatus


class ResumeTargetError(StickerqError):
    """Neither or both of an account and a sender given: which pause to lift is unclear."""


def list_active_pauses(settings: Settings) -> list[dict[str, str]]:
    with open_sessions(settings.database_url) as sessions, sessions() as session:
        return [describe_pause(pause) for pause in list_pauses(session)]


def resume_sending(
    settings: Settings, *, account: str | None = None, sender: str | None = None
) -> tuple[int, int]:
    """Lift the pause of an account (SID) or of a sender; returns (pauses lifted, batches).

    Exactly one of the two is given. Redis is checked first: without it the pause's mirror
    could not be lifted, nor the work that waited dispatched.
    """
    if (account is None) == (sender is None):
        raise ResumeTargetError(
            "give exactly one of --account SID or --sender +91... (the HTTP API: `account` "
            "or `sender`): which pause to lift"
        )
    check_broker(settings)
    sid = account or settings.kaleyra_sid
    with open_sessions(settings.database_url) as sessions:
        with sessions.begin() as session:
            lifted = resume(session, sid, sender)
            query = select(Campaign.id).where(
                Campaign.sid == sid,
                Campaign.status.in_((CampaignStatus.QUEUED, CampaignStatus.RUNNING)),
            )
            if sender is not None:
                sends_from = select(CampaignSender.campaign_id).where(
                    CampaignSender.sender == sender
                )
                query = query.where(or_(Campaign.sender == sender, Campaign.id.in_(sends_from)))
            campaigns = session.scalars(query).all()
        account_key, sender_key = pause_keys(settings.redis_prefix, sid, sender or "")
        redis.Redis.from_url(settings.redis_url).delete(sender_key if sender else account_key)
        batches = sum(dispatch_campaign(settings, sessions, campaign) for campaign in campaigns)
    return lifted, batches
