"""Campaign status moves that both producers and workers make."""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.orm import Session

from stickerq.counts import messages_in
from stickerq.db import rows_changed
from stickerq.models import Campaign, utcnow
from stickerq.states import UNSETTLED, CampaignStatus


def complete_if_settled(session: Session, campaign_id: int) -> bool:
    """Mark the campaign completed once no message is pending or sending."""
    result = session.execute(
        update(Campaign)
        .where(
            Campaign.id == campaign_id,
            Campaign.status == CampaignStatus.RUNNING,
            messages_in(campaign_id, UNSETTLED) == 0,
        )
        .values(status=CampaignStatus.COMPLETED, finished_at=utcnow())
    )
    return bool(rows_changed(result))
