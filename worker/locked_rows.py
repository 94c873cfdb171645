"""The rows a send-path statement acts on, locked by primary key before anything is tested.

Each statement on the send path (claim, release, expiry of a late batch, suppression, result
write, leaving mark) first locks its rows by primary key alone (`locked`), then tests their
status, claim and campaign on what it locked. A condition on `messages.status` itself would
let the planner walk an index that holds status (with no statistics yet after a bulk COPY, or
stale ones that have never seen this campaign, or a generic plan, it does): a claim of 200
messages would read the campaign's million (tests/worker/test_plans.py).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import CTE, ColumnElement, select
from sqlalchemy.sql.elements import BindParameter

from stickerq.models import Message


def locked(rows: ColumnElement[bool], *also: ColumnElement[Any]) -> CTE:
    """The rows chosen by a primary-key condition, locked (FOR UPDATE: a concurrent claim
    waits, then sees what this one wrote), with the columns the statements test, and `also`."""
    return (
        select(
            Message.id,
            Message.campaign_id,
            Message.status,
            Message.next_attempt_at,
            Message.claim_token,
            Message.sender,
            *also,
        )
        .where(rows)
        .with_for_update()
        .cte("locked")
        .prefix_with("MATERIALIZED")
    )


def claimed_by(rows: CTE, token: str | BindParameter[str]) -> ColumnElement[bool]:
    """Still under this claim (the move's starting statuses say which statuses count: a
    sweeper that took the claim for dead may have made its messages `unknown`, and the
    worker's own word, a result or "never sent", still wins)."""
    return rows.c.claim_token == token
