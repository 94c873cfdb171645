"""/accounts: the Kaleyra accounts a campaign may name (as `stickerq accounts list`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from stickerq.api.auth import Scope, needs
from stickerq.api.common import AppSettings, json_answer
from stickerq.api.problems import Problem, problem_responses
from stickerq.api.reach import Reach
from stickerq.errors import StickerqError
from stickerq.producer.views.accounts import AccountsView, accounts_view

router = APIRouter(
    prefix="/accounts",
    tags=["accounts"],
    dependencies=[needs(Scope.READ)],
    responses=problem_responses(401, 500),
)


@router.get("", response_model=AccountsView)
def list_accounts(settings: AppSettings, account: Reach) -> Any:
    """As `stickerq accounts list --json`: each account's SID, pod, URL, senders, and whether
    its api-key is set (never the key); its own only, for a key restricted to one."""
    try:
        view = accounts_view(settings)
        if account is not None:
            mine = [shown for shown in view.accounts if shown.sid == account]
            view = view.model_copy(update={"accounts": mine})
        return json_answer(view)
    except StickerqError as exc:  # the list of accounts is unusable: the server's fault
        raise Problem(
            500, "bad_accounts", "the accounts configuration is unusable", str(exc)
        ) from None
