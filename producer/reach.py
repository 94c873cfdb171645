"""A key's reach: a key restricted to an account (`stickerq keys create --account SID`) sees
and changes that account's campaigns only, and another account's campaign is to it as if
it did not exist (the same CampaignNotFound, so a 404 tells no one it is there)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from stickerq.db import open_sessions
from stickerq.errors import CampaignNotFound
from stickerq.models import Campaign
from stickerq.settings import Settings


def campaigns_in_reach(
    settings: Settings,
    campaign_ids: Iterable[int],
    account: str | None,
    *,
    sessions: sessionmaker[Session] | None = None,
) -> set[int]:
    """Those of `campaign_ids` that exist and a key of `account` reaches (None: any)."""
    wanted = set(campaign_ids)
    if not wanted:
        return set()
    query = select(Campaign.id).where(Campaign.id.in_(wanted))
    if account is not None:
        query = query.where(Campaign.sid == account)
    with open_sessions(settings.database_url, sessions) as factory, factory() as session:
        return set(session.scalars(query))


def check_reach(
    settings: Settings,
    campaign_id: int,
    account: str | None,
    *,
    sessions: sessionmaker[Session] | None = None,
) -> None:
    """Raise CampaignNotFound, worded as for an absent campaign, when a key of `account`
    does not reach the campaign; an unrestricted key (None) reaches every one unchecked."""
    if account is None:
        return
    if not campaigns_in_reach(settings, [campaign_id], account, sessions=sessions):
        raise CampaignNotFound(
            f"no campaign {campaign_id}; `stickerq campaigns list` shows the campaigns"
        )
