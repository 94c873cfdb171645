"""The producer's Python API: validate, store and dispatch a campaign; the CLI calls this."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.orm import Session, sessionmaker

from stickerq.accounts import check_sender, default_sender
from stickerq.actors import cli_actor
from stickerq.db import open_sessions
from stickerq.errors import ConfigurationError
from stickerq.producer.queue import check_broker, dispatch_campaign
from stickerq.producer.recipients import (
    InvalidRow,
    RecipientReport,
    names_senders,
    open_recipients,
)
from stickerq.producer.request import CampaignRequest
from stickerq.producer.spec import validate_spec
from stickerq.producer.sticker_links import allowed_hosts, check_sticker_link
from stickerq.producer.store import store_campaign
from stickerq.producer.validity import check_start, read_validity
from stickerq.producer.window_audience import AudienceError, audience_since, window_recipients
from stickerq.settings import Settings
from stickerq.states import CampaignStatus
from stickerq.suppression_list import phone_hasher

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class EnqueueResult:
    campaign_id: int
    recipients: int
    duplicates: int
    invalid_count: int
    suppressed: int = 0  # recipients dropped: on the account's suppression list
    invalid: list[InvalidRow] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    batches: int = 0


def enqueue_campaign(
    settings: Settings,
    request: CampaignRequest,
    *,
    sessions: sessionmaker[Session] | None = None,
    status: CampaignStatus = CampaignStatus.QUEUED,
    actor: str | None = None,
) -> EnqueueResult:
    """Validate the campaign and its recipients, store them in one transaction, dispatch.

    Stored with status `scheduled` (producer.schedule), it is not dispatched: beat does that.
    Raises SpecError / RecipientFileError / RecipientsRejected (nothing stored) on bad input.
    `actor` is who asks, as the audit log names them; None: this machine's user (a script
    calling this function), `cli:<user>@<host>`.
    """
    account = settings.account(request.account)
    sender = request.sender or default_sender(account, settings.sender)
    senders_per_row = request.to_file is not None and names_senders(request.to_file)
    since = _audience_since(request)
    if not sender and not senders_per_row:
        raise ConfigurationError(
            "no sender number: pass --from +91... or set STICKERQ_SENDER to the business "
            "number registered on your Kaleyra account (or give the recipients CSV a `from` "
            "column)"
        )
    spec, warnings = validate_spec(
        name=request.name or f"campaign {datetime.now(UTC):%Y-%m-%d %H:%M:%S}",
        sender=sender,
        sticker_id=request.sticker_id,
        sticker_link=request.sticker_link,
        ref=request.ref,
        ref1=request.ref1,
        ref2=request.ref2,
        wa_source=request.wa_source,
        default_region=settings.default_region,
        http_hosts=allowed_hosts(settings.sticker_check_allow_hosts),
        senders_per_row=senders_per_row,
    )
    if spec.sender:
        check_sender(account, spec.sender)
    validity = read_validity(request.valid_for, request.valid_until, settings.valid_for)
    if spec.sticker.link is not None and not request.no_check:
        check_sticker_link(
            spec.sticker.link, allow_hosts=allowed_hosts(settings.sticker_check_allow_hosts)
        )
    dispatching = status is CampaignStatus.QUEUED
    if dispatching:
        check_start(validity, datetime.now(UTC))
        check_broker(settings)
    report = RecipientReport()
    with open_sessions(settings.database_url, sessions) as factory:
        recipients = (
            window_recipients(factory, spec.sender, since, report)
            if since is not None
            else open_recipients(
                to=request.to,
                to_file=request.to_file,
                default_region=settings.default_region,
                report=report,
                dedupe=False,  # the store drops them with the unique index: flat memory
                default_sender=bool(spec.sender),
                account=account,
            )
        )
        campaign_id = store_campaign(
            factory,
            spec,
            account.sid,
            recipients,
            report,
            skip_invalid=request.skip_invalid,
            status=status,
            validity=validity,
            hasher=phone_hasher(settings),
            in_window=in_window(settings, request),
            actor=actor or cli_actor(),
        )
        batches = dispatch_campaign(settings, factory, campaign_id) if dispatching else 0
    warnings = warnings + report.warnings
    if report.truncated_refs:
        warnings.append(f"{report.truncated_refs} per-row ref value(s) cut to 255 characters")
    log.info(
        "campaign %s stored: %s recipients (%s suppressed), %s batches",
        campaign_id,
        report.valid,
        report.suppressed,
        batches,
    )
    return EnqueueResult(
        campaign_id=campaign_id,
        recipients=report.valid,
        duplicates=report.duplicates,
        invalid_count=report.invalid_count,
        suppressed=report.suppressed,
        invalid=list(report.invalid),
        warnings=warnings,
        batches=batches,
    )


def in_window(settings: Settings, request: CampaignRequest) -> bool:
    """Whether the campaign is sent only inside its recipients' windows: as asked, else
    always for a `--to-window` audience, else STICKERQ_IN_WINDOW."""
    if request.in_window is not None:
        return request.in_window
    return request.to_window or settings.in_window


def _audience_since(request: CampaignRequest) -> datetime | None:
    """`--to-window`'s start (None: the recipients are a list or a file)."""
    if not request.to_window:
        if request.window_since is not None:
            raise AudienceError("--since goes with --to-window: the recipients' time range")
        return None
    if request.to is not None or request.to_file is not None:
        raise AudienceError(
            "recipients given both as --to-window and as a list or file: give only one"
        )
    return audience_since(request.window_since)
