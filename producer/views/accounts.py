"""The JSON of `accounts list` (and of /accounts in the HTTP API): never an api-key."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from stickerq.accounts import Account
from stickerq.producer.views.base import View
from stickerq.settings import Settings


class AccountView(View):
    """A Kaleyra account a campaign may name (`send --account SID`)."""

    sid: Annotated[str, Field(description="the account's SID")]
    pod: Annotated[Literal["in", "ap", "eu"], Field(description="its pod")]
    url: Annotated[str, Field(description="where its requests go: the pod's domain or base_url")]
    api_key_set: Annotated[
        bool, Field(description="an api-key is configured (workers need it); never the key")
    ]
    senders: Annotated[
        list[str], Field(description="its business numbers (E.164); empty: any sender is taken")
    ]
    retention_days: Annotated[
        int | None,
        Field(description="its own retention in days (0: for ever); null: STICKERQ_RETENTION_DAYS"),
    ] = None

    @classmethod
    def of_account(cls, account: Account) -> AccountView:
        return cls(
            sid=account.sid,
            pod=account.pod,
            url=account.url,
            api_key_set=account.has_key,
            senders=list(account.senders),
            retention_days=account.retention_days,
        )


class AccountsView(View):
    """The Kaleyra accounts in force, and where they come from."""

    source: Annotated[
        str,
        Field(
            description="`STICKERQ_ACCOUNTS_FILE <path>`, `STICKERQ_ACCOUNTS`, or "
            "`STICKERQ_KALEYRA_*` (the one account of those settings)"
        ),
    ]
    accounts: Annotated[list[AccountView], Field(description="in the order configured")]


def accounts_view(settings: Settings) -> AccountsView:
    """Raises ConfigurationError when the list of accounts is unusable."""
    if settings.accounts_file is not None:
        source = f"STICKERQ_ACCOUNTS_FILE {settings.accounts_file}"
    elif settings.lists_accounts:
        source = "STICKERQ_ACCOUNTS"
    else:
        source = "STICKERQ_KALEYRA_*"
    views = [AccountView.of_account(account) for account in settings.all_accounts()]
    return AccountsView(source=source, accounts=views)
