"""Reading the audit log (`stickerq audit`, `GET /audit`): entries newest first, since a time,
of one actor, at most `limit` of them. What is recorded, and when, is stickerq/audit.py."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from stickerq.db import open_sessions
from stickerq.errors import StickerqError
from stickerq.models import AuditEntry, utcnow
from stickerq.producer.failures import parse_since
from stickerq.settings import Settings

DEFAULT_SINCE = "24h"
DEFAULT_LIMIT = 100
MAX_LIMIT = 1_000  # a screen, or a page of JSON; narrow with --since and --actor


class AuditFilterError(StickerqError):
    """A limit or actor the audit log cannot be read with."""


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One entry as read back: its parameters decoded."""

    id: int
    at: datetime
    actor: str
    action: str
    target: str
    params: dict[str, Any]


@dataclass(frozen=True, slots=True)
class AuditPage:
    """The entries asked for, newest first; `more`: older ones matched past `limit`."""

    since: datetime
    actor: str | None
    limit: int
    more: bool
    entries: list[AuditRecord] = field(default_factory=list)


def read_audit(
    settings: Settings,
    *,
    since: str = DEFAULT_SINCE,
    actor: str | None = None,
    limit: int = DEFAULT_LIMIT,
    now: datetime | None = None,
    sessions: sessionmaker[Session] | None = None,
) -> AuditPage:
    """The entries at or after `since` (a duration back from now, `24h`, or an ISO time with
    its zone), of `actor` only if given (its exact name), newest first."""
    if not 1 <= limit <= MAX_LIMIT:
        raise AuditFilterError(
            f"--limit must be 1 to {MAX_LIMIT:,}, got {limit}: narrow the entries with --since "
            "or --actor instead"
        )
    start = parse_since(since, now or utcnow(), "--since")
    query = select(AuditEntry).where(AuditEntry.at >= start)
    if actor is not None:
        query = query.where(AuditEntry.actor == actor)
    query = query.order_by(AuditEntry.at.desc(), AuditEntry.id.desc()).limit(limit + 1)
    with open_sessions(settings.database_url, sessions) as factory, factory() as session:
        rows = session.scalars(query).all()
    entries = [_record(row) for row in rows[:limit]]
    return AuditPage(start, actor, limit, len(rows) > limit, entries)


def _record(row: AuditEntry) -> AuditRecord:
    try:
        params = json.loads(row.params)
    except ValueError:  # never written so by stickerq.audit.record; shown, not lost
        params = {"unreadable": row.params}
    if not isinstance(params, dict):
        params = {"value": params}
    return AuditRecord(row.id, row.at, row.actor, row.action, row.target, params)
