"""The audit log: who changed what, written in the transaction of the change itself, so a
change that rolls back leaves no entry and a committed one always has its entry.

Only changes made by a person or an API key are recorded. Automatic work (beat's retention
purge, a schedule's next run, a worker pausing a sender after E110) is not: it is no one's
decision, and its traces are elsewhere already (the pause's code, `messages_purged_at`, the
run's `schedule_id`); recording it would bury the people's changes under beat's.

Append-only: nothing updates or deletes an entry but an erasure, which puts the number's
keyed hash where the number was (`scrub_number`). On PostgreSQL a trigger (migration 0019)
refuses any other UPDATE or DELETE; `allow_rewrite` is the erasure's pass.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from enum import StrEnum
from typing import Any

from sqlalchemy import func, or_, select, text, update
from sqlalchemy.orm import Session

from stickerq.db import rows_changed
from stickerq.models import AuditEntry, utcnow

# The transaction-local setting that lets the trigger of migration 0019 pass an UPDATE.
REWRITE_SETTING = "stickerq.audit_rewrite"
SCRUB_CHUNK = 10_000  # entries rewritten per statement by an erasure


class Action(StrEnum):
    """What an entry records; `target` names what it was done to."""

    CAMPAIGN_CREATED = "campaign.created"  # campaign:<id>, sent now or scheduled
    CAMPAIGN_RESCHEDULED = "campaign.rescheduled"
    CAMPAIGN_PAUSED = "campaign.paused"
    CAMPAIGN_RESUMED = "campaign.resumed"
    CAMPAIGN_CANCELLED = "campaign.cancelled"
    CAMPAIGN_REQUEUED = "campaign.requeued"  # one entry per committed chunk of messages
    CAMPAIGN_DEADLINE_SET = "campaign.deadline_set"  # a requeue's new deadline
    CAMPAIGN_PURGED = "campaign.purged"  # a hand purge (`stickerq purge`), not beat's
    SCHEDULE_CREATED = "schedule.created"  # schedule:<id>
    SCHEDULE_STOPPED = "schedule.stopped"
    PAUSE_LIFTED = "pause.lifted"  # account:<SID> or sender:<+E164>
    SUPPRESSION_ADDED = "suppression.added"  # suppression:<+E164>, one entry per number
    SUPPRESSION_REMOVED = "suppression.removed"
    SUPPRESSIONS_IMPORTED = "suppressions.imported"  # account:<SID>, counts only
    SENDER_RATE_SET = "sender_rate.set"  # sender:<+E164>
    SENDER_RATE_RESET = "sender_rate.reset"
    NUMBER_ERASED = "number.erased"  # number:hmac:<hex>, never the number
    WINDOWS_IMPORTED = "windows.imported"  # window_ledger: a CRM backfill, counts only
    KEY_CREATED = "key.created"  # key:<name>; its scope, account and expiry, never the key
    KEY_REVOKED = "key.revoked"
    WEBHOOK_ADDED = "webhook.added"  # webhook:<id>; its url, events and account, never the secret
    WEBHOOK_REMOVED = "webhook.removed"
    WEBHOOK_ENABLED = "webhook.enabled"  # a disabled webhook brought back by `webhooks test`


def without_query(url: str) -> str:
    """A URL as an entry keeps it: no query nor fragment, which may hold a signature or a
    token (a presigned sticker link, a receiver's `?token=`)."""
    return url.split("?", 1)[0].split("#", 1)[0]


def record(session: Session, actor: str, action: str, target: str, **params: Any) -> None:
    """Add an entry to `session`'s transaction. `params` are the change's own parameters,
    JSON-encodable, and never a secret (an api-key, a webhook's secret, a key's value)."""
    session.add(
        AuditEntry(
            at=utcnow(),
            actor=actor,
            action=action,
            target=target,
            params=json.dumps(params, sort_keys=True, default=str),
        )
    )


def campaign_target(campaign_id: int) -> str:
    return f"campaign:{campaign_id}"


def allow_rewrite(session: Session) -> None:
    """Let this transaction rewrite entries (an erasure only): PostgreSQL's trigger of
    migration 0019 refuses an UPDATE or DELETE of `audit_log` without it."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT set_config(:name, 'on', true)"), {"name": REWRITE_SETTING})


def scrub_number(session: Session, forms: Sequence[str], replacement: str) -> int:
    """Replace every form of a number (longest first, each containing the next) in the
    entries' targets and parameters by `replacement`; returns the entries changed.

    `replacement` holds no quote nor backslash, so the parameters stay valid JSON. Each
    statement rewrites at most SCRUB_CHUNK entries; a rewritten one no longer matches.
    """
    holds = _holding(forms)
    allow_rewrite(session)
    total = 0
    while True:
        chosen = select(AuditEntry.id).where(holds).limit(SCRUB_CHUNK).scalar_subquery()
        values = {
            "target": _replaced(AuditEntry.target, forms, replacement),
            "params": _replaced(AuditEntry.params, forms, replacement),
        }
        result = session.execute(
            update(AuditEntry)
            .where(AuditEntry.id.in_(chosen))
            .values(values)
            .execution_options(synchronize_session=False)
        )
        changed = rows_changed(result)
        total += changed
        if changed < SCRUB_CHUNK:
            return total


def count_holding(session: Session, forms: Sequence[str]) -> int:
    """The entries whose target or parameters hold the number (an erasure's dry run)."""
    holds = _holding(forms)
    return int(session.scalar(select(func.count()).select_from(AuditEntry).where(holds)) or 0)


def _holding(forms: Sequence[str]) -> Any:
    like = f"%{forms[-1]}%"  # the shortest form, which every other contains
    return or_(AuditEntry.target.like(like), AuditEntry.params.like(like))


def _replaced(column: Any, forms: Sequence[str], replacement: str) -> Any:
    for form in forms:
        column = func.replace(column, form, replacement)
    return column
