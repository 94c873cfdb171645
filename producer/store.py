"""Storing a campaign and its recipients: one transaction, bulk inserts, nothing half-stored."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from stickerq.audit import Action, campaign_target, record, without_query
from stickerq.counts import campaign_counts
from stickerq.errors import StickerqError
from stickerq.models import Campaign, CampaignSender, Message, utcnow
from stickerq.producer.bulk_insert import MessageRow, insert_messages
from stickerq.producer.recipients import Recipient, RecipientReport
from stickerq.producer.spec import CampaignSpec
from stickerq.producer.validity import Validity
from stickerq.states import CampaignStatus, MessageStatus
from stickerq.suppression_list import PhoneHasher

# Distinct `from` numbers one campaign may use: a business has a handful; thousands mean the
# column holds something else (the recipients, say).
MAX_SENDERS = 1_000


class RecipientsRejected(StickerqError):
    """Invalid recipients (and no --skip-invalid), or none at all: nothing was stored."""

    def __init__(self, report: RecipientReport, problem: str) -> None:
        self.report = report
        super().__init__(problem)


def store_campaign(
    sessions: sessionmaker[Session],
    spec: CampaignSpec,
    sid: str,
    recipients: Iterable[Recipient],
    report: RecipientReport,
    *,
    skip_invalid: bool,
    status: CampaignStatus = CampaignStatus.QUEUED,
    validity: Validity = Validity(),
    hasher: PhoneHasher | None = None,
    in_window: bool = False,
    actor: str,
) -> int:
    """Store the campaign and every valid recipient; returns the campaign id.

    The recipients are streamed into bulk inserts inside the one transaction, which is rolled
    back if any row turns out invalid (unless skip_invalid) or none is valid. A campaign
    sent now counts its validity from now; a scheduled one from its time (producer.schedule).
    The audit log records the campaign under `actor` in the same transaction.
    """
    senders = _SendersSeen(spec.sender, report)
    with sessions.begin() as session:
        campaign = Campaign(
            name=spec.name,
            sid=sid,
            sender=spec.sender,
            sticker_id=spec.sticker.id,
            sticker_link=spec.sticker.link,
            wa_source=spec.wa_source,
            ref=spec.ref,
            ref1=spec.ref1,
            ref2=spec.ref2,
            status=status,
            valid_for_seconds=validity.seconds,
            valid_until=validity.deadline(utcnow())
            if status is CampaignStatus.QUEUED
            else validity.valid_until,
            in_window=in_window,
        )
        session.add(campaign)
        session.flush()
        # The database drops duplicates (first row winning), so memory stays flat however
        # many recipients there are.
        report.suppressed = insert_messages(
            session,
            campaign.id,
            (_message_row(campaign, senders.note(recipient)) for recipient in recipients),
            sid,
            hasher,
        )
        stored = campaign_counts(session, campaign.id).messages
        report.duplicates += report.valid - stored - report.suppressed
        report.valid = stored
        if report.invalid_count and not skip_invalid:
            raise RecipientsRejected(
                report,
                f"{report.invalid_count} invalid recipient(s); nothing was stored. Fix them, "
                "or pass --skip-invalid to send to the valid ones only.",
            )
        if report.valid == 0:
            problem = "no valid recipient; nothing was stored"
            if report.suppressed:
                problem = (
                    f"every valid recipient ({report.suppressed}) is on account {sid}'s "
                    "suppression list; nothing was stored (`stickerq suppress list` shows it)"
                )
            raise RecipientsRejected(report, problem)
        campaign.recipient_count = report.valid
        campaign.suppressed_count = report.suppressed
        if senders.per_row:
            campaign.senders_per_row = True
            session.add_all(CampaignSender(campaign_id=campaign.id, sender=s) for s in senders.seen)
        record(
            session,
            actor,
            Action.CAMPAIGN_CREATED,
            campaign_target(campaign.id),
            **_created(campaign, report),
        )
        return campaign.id


def _created(campaign: Campaign, report: RecipientReport) -> dict[str, object]:
    """The audit entry's parameters: what was asked and what was stored, no recipient. A
    sticker link loses its query, which may hold a signature (a presigned URL)."""
    link = campaign.sticker_link
    return {
        "name": campaign.name,
        "sid": campaign.sid,
        "sender": campaign.sender,
        "status": str(campaign.status),
        "sticker_id": campaign.sticker_id,
        "sticker_link": without_query(link) if link else None,
        "wa_source": campaign.wa_source,
        "recipients": report.valid,
        "suppressed": report.suppressed,
        "invalid_skipped": report.invalid_count,
        "in_window": campaign.in_window,
        "valid_until": campaign.valid_until,
    }


class _SendersSeen:
    """The numbers a campaign's rows are sent from (a few): its own sender, and the `from`
    numbers of a CSV that has that column."""

    def __init__(self, campaign_sender: str, report: RecipientReport) -> None:
        self.campaign_sender = campaign_sender
        self.report = report
        self.seen: set[str] = set()

    @property
    def per_row(self) -> bool:
        return bool(self.seen - {self.campaign_sender})

    def note(self, recipient: Recipient) -> Recipient:
        sender = recipient.sender or self.campaign_sender
        if sender not in self.seen:
            if len(self.seen) >= MAX_SENDERS:
                raise RecipientsRejected(
                    self.report,
                    f"line {recipient.line}: more than {MAX_SENDERS} different `from` numbers; "
                    "the from column must hold the business numbers the rows are sent from. "
                    "Nothing was stored.",
                )
            self.seen.add(sender)
        return recipient


def _message_row(campaign: Campaign, recipient: Recipient) -> MessageRow:
    """A row's own refs win; the campaign's defaults fill the gaps. A row sent from the
    campaign's own sender stores none."""
    sender = recipient.sender
    return (
        recipient.phone,
        recipient.ref if recipient.ref is not None else campaign.ref,
        recipient.ref1 if recipient.ref1 is not None else campaign.ref1,
        recipient.ref2 if recipient.ref2 is not None else campaign.ref2,
        None if sender == campaign.sender else sender,
    )


def iter_pending_ids(session: Session, campaign_id: int) -> Iterator[int]:
    """The campaign's pending message pks in order, streamed from a server-side cursor.

    Core rows, not ORM ones: at a million ids the ORM's per-row work was most of the read.
    """
    connection = session.connection().execution_options(stream_results=True, max_row_buffer=10_000)
    yield from connection.execute(
        select(Message.id)
        .where(Message.campaign_id == campaign_id, Message.status == MessageStatus.PENDING)
        .order_by(Message.id)
    ).scalars()
