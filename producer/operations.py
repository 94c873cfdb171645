"""Operator actions: list pauses, lift one and dispatch the work that waited for it."""

from __future__ import annotations

import redis
from sqlalchemy import select

from stickerq.db import open_sessions
from stickerq.errors import StickerqError
from stickerq.models import Campaign
from stickerq.pauses import describe_pause, list_pauses, pause_keys, resume
from stickerq.producer.queue import check_broker, dispatch_campaign
from stickerq.settings import Settings
from stickerq.states import CampaignStatus


class ResumeTargetError(StickerqError):
    """Neither an account nor a sender given: which pause to lift is unclear."""


def list_active_pauses(settings: Settings) -> list[dict[str, str]]:
    with open_sessions(settings.database_url) as sessions, sessions() as session:
        return [describe_pause(pause) for pause in list_pauses(session)]


def resume_sending(
    settings: Settings, *, account: str | None = None, sender: str | None = None
) -> tuple[int, int]:
    """Lift the pause of an account (SID), or of a sender of an account (the only account
    configured when none is named); returns (pauses lifted, batches).

    Redis is checked first: without it the pause's mirror could not be lifted, nor the work
    that waited dispatched. An account's pause can be lifted after the account left the
    configuration; a sender's needs its account named when several are configured.
    """
    if account is None and sender is None:
        raise ResumeTargetError(
            "give --account SID or --sender +91... (with several accounts: both, for a "
            "sender's pause; the HTTP API: `account` and/or `sender`): which pause to lift"
        )
    sid = account if account is not None else settings.account(None).sid
    check_broker(settings)
    with open_sessions(settings.database_url) as sessions:
        with sessions.begin() as session:
            lifted = resume(session, sid, sender)
            query = select(Campaign.id, Campaign.sender).where(
                Campaign.sid == sid,
                Campaign.status.in_((CampaignStatus.QUEUED, CampaignStatus.RUNNING)),
            )
            if sender is not None:
                query = query.where(Campaign.sender == sender)
            campaigns = session.execute(query).all()
        account_key, sender_key = pause_keys(settings.redis_prefix, sid, sender or "")
        redis.Redis.from_url(settings.redis_url).delete(sender_key if sender else account_key)
        batches = sum(dispatch_campaign(settings, sessions, campaign) for campaign, _ in campaigns)
    return lifted, batches
