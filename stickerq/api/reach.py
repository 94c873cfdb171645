"""The account a request's key is restricted to, as route dependencies: the one place the
API applies it (producer/reach.py has the rule).

- `Reach`: the account (None: every one), for routes that filter or check by it.
- `campaign_in_reach`: a route of one campaign answers 404 for another account's campaign.
- `every_account`: a route that acts on every account at once (erasing a number, the
  window ledger) refuses a restricted key (403).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from stickerq.api.auth import Token
from stickerq.api.common import AppSettings, CampaignId, problem_of
from stickerq.api.problems import Problem
from stickerq.errors import CampaignNotFound
from stickerq.producer.reach import check_reach


def _reach(request: Request) -> str | None:
    token: Token | None = getattr(request.state, "token", None)
    return token.account if token is not None else None


Reach = Annotated[str | None, Depends(_reach)]


def campaign_in_reach(campaign_id: CampaignId, settings: AppSettings, account: Reach) -> None:
    """404, as for no campaign, when the key does not reach it (one read by primary key)."""
    try:
        check_reach(settings, campaign_id, account)
    except CampaignNotFound as exc:
        raise problem_of(exc) from None


def every_account(request: Request, account: Reach) -> None:
    """403 for a key restricted to an account: this route reaches every account."""
    if account is not None:
        raise Problem(
            403,
            "account_restricted",
            "this route acts on every account",
            f"this key reaches account {account} only; use a key of every account",
        )


def within(account: str | None, wanted: str | None, what: str) -> str | None:
    """The account a request may act on: `wanted` or, when it names none, the key's own;
    403 when it names another account than the key's."""
    if account is None:
        return wanted
    if wanted not in (None, account):
        raise foreign_account(account, what)
    return account


def foreign_account(account: str, what: str) -> Problem:
    return Problem(
        403,
        "other_account",
        f"{what} is of another account",
        f"this key reaches account {account} only: name that account, or use a key of "
        "every account",
    )
