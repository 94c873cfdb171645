"""The audit log: who changed what, written in the transaction of the change itself, so a
change that rolls back leaves no entry and a committed one always has its entry."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy.orm import Session

from stickerq.models import AuditEntry, utcnow


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
