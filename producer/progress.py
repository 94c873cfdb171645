"""Where a campaign stands: counts by status and error code, and any pause blocking it.

Read from the campaign's counters (stickerq/counts.py), never by counting its messages: a
poll every second costs the same for a campaign of a million.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from stickerq.counts import campaign_counts
from stickerq.errors import CampaignNotFound
from stickerq.models import Campaign, Message, Pause
from stickerq.pauses import campaign_pauses, campaign_senders, describe_pause
from stickerq.producer.window import outside_window
from stickerq.states import SETTLED, UNSETTLED, CampaignStatus, MessageStatus, PauseScope

# While a campaign is in one of these its messages go out, so an ETA means something.
GOING = (CampaignStatus.QUEUED, CampaignStatus.RUNNING)


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
    pause: dict[str, str] | None = None  # the pause holding all that is left
    # With per-row senders: pauses of some of its numbers while the others go on.
    paused_senders: list[dict[str, str]] = field(default_factory=list)
    # Nothing is left but the paused numbers' messages (checked only once nothing is sending).
    held_by_senders: bool = False

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
        """Messages outside the window (131047, or never sent): only a template reaches them."""
        return outside_window(self.by_code, self.by_status)

    @property
    def blocked(self) -> bool:
        """A pause holds the rest: nothing more will go until an operator resumes."""
        held = self.pause is not None or self.held_by_senders
        return held and self.count(MessageStatus.SENDING) == 0

    @property
    def holding(self) -> list[dict[str, str]]:
        """The pauses that hold what is left."""
        return [self.pause] if self.pause is not None else self.paused_senders


def campaign_progress(session: Session, campaign_id: int) -> CampaignProgress:
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise CampaignNotFound(
            f"no campaign {campaign_id}; check the id printed by `stickerq send`"
        )
    counts = campaign_counts(session, campaign_id)
    pause, paused_senders = _blocking(session, campaign, campaign_pauses(session, campaign))
    idle = not counts.by_status.get(MessageStatus.SENDING)
    held_by_senders = (
        bool(paused_senders) and idle and not _others_left(session, campaign, paused_senders)
    )
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
        paused_senders=[describe_pause(p) for p in paused_senders],
        held_by_senders=held_by_senders,
    )


def _others_left(session: Session, campaign: Campaign, paused: list[Pause]) -> bool:
    """Whether a message from a number that is not paused is still unsettled. Asked only once
    the counters show nothing sending, but read after them: a worker may have claimed a
    pending message in between, so `sending` counts as left too."""
    sent_from = func.coalesce(Message.sender, campaign.sender)
    left = select(Message.id).where(
        Message.campaign_id == campaign.id,
        Message.status.in_(UNSETTLED),
        sent_from.not_in([pause.sender for pause in paused]),
    )
    return bool(session.scalar(select(exists(left))))


def _blocking(
    session: Session, campaign: Campaign, pauses: list[Pause]
) -> tuple[Pause | None, list[Pause]]:
    """The pause that holds the whole campaign, if one does, and the pauses that hold only
    some of its numbers (per-row senders: each is paused on its own)."""
    if not pauses:
        return None, []
    account = next((p for p in pauses if p.scope == PauseScope.ACCOUNT), None)
    if account is not None or not campaign.senders_per_row:
        return account or pauses[0], []
    paused = {p.sender for p in pauses}
    senders = set(campaign_senders(session, campaign))
    if senders <= paused:
        return pauses[0], []
    return None, pauses
