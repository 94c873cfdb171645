"""Where a campaign stands: counts by status and error code, and any pause blocking it.

Read from the campaign's counters (stickerq/counts.py), never by counting its messages: a
poll every second costs the same for a campaign of a million.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from stickerq.counts import campaign_counts
from stickerq.errors import StickerqError
from stickerq.models import Campaign
from stickerq.pauses import active_pause, describe_pause
from stickerq.producer.window import outside_window
from stickerq.states import SETTLED, CampaignStatus, MessageStatus

# While a campaign is in one of these its messages go out, so an ETA means something.
GOING = (CampaignStatus.QUEUED, CampaignStatus.RUNNING)


class CampaignNotFound(StickerqError):
    pass


@dataclass(frozen=True, slots=True)
class CampaignProgress:
    campaign_id: int
    name: str
    status: str
    sender: str
    recipients: int
    by_status: dict[str, int] = field(default_factory=dict)
    by_code: dict[str, int] = field(default_factory=dict)
    retries_waiting: int = 0
    attempts: int = 0
    retried: int = 0  # attempts beyond each message's first (WA500s)
    pause: dict[str, str] | None = None

    def count(self, *statuses: MessageStatus) -> int:
        return sum(self.by_status.get(status, 0) for status in statuses)

    @property
    def settled(self) -> int:
        return self.count(*SETTLED)

    @property
    def all_settled(self) -> bool:
        return self.settled >= self.recipients

    @property
    def outside_window(self) -> int:
        """Messages that came back 131047: only a template message can reach them."""
        return outside_window(self.by_code)

    @property
    def blocked(self) -> bool:
        """A pause holds the rest: nothing more will go until an operator resumes."""
        return self.pause is not None and self.count(MessageStatus.SENDING) == 0


def campaign_progress(session: Session, campaign_id: int) -> CampaignProgress:
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise CampaignNotFound(
            f"no campaign {campaign_id}; check the id printed by `stickerq send`"
        )
    counts = campaign_counts(session, campaign_id)
    pause = active_pause(session, campaign.sid, campaign.sender)
    return CampaignProgress(
        campaign_id=campaign.id,
        name=campaign.name,
        status=campaign.status,
        sender=campaign.sender,
        recipients=campaign.recipient_count,
        by_status=counts.by_status,
        by_code=counts.by_code,
        retries_waiting=counts.retries_waiting,
        attempts=counts.attempts,
        retried=counts.attempts - counts.attempted,
        pause=describe_pause(pause) if pause else None,
    )
