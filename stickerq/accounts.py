"""Kaleyra accounts: each a SID, its api-key, its pod (or base URL) and its business numbers.

Several accounts come from a TOML or JSON file (`STICKERQ_ACCOUNTS_FILE`) or from JSON in
`STICKERQ_ACCOUNTS`; without either, the one account of the `STICKERQ_KALEYRA_*` settings.
Settings.all_accounts() and Settings.account() resolve them (stickerq/settings.py).

An error here names the file (or variable), the entry and the field, never a value given:
an entry holds an api-key.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from stickerq.errors import ConfigurationError, StickerqError

POD_DOMAINS = {
    "in": "https://api.in.kaleyra.io",
    "ap": "https://api.ap.kaleyra.io",
    "eu": "https://api.eu.kaleyra.io",
}
ACCOUNTS_VARIABLE = "STICKERQ_ACCOUNTS"
E164 = r"^\+[1-9][0-9]{6,14}$"
FILE_EXAMPLE = '[[accounts]]\nsid = "HXIN..."\napi_key = "..."\npod = "in"'


class UnknownAccount(StickerqError):
    """A campaign (or a command) names an account that is not configured, or names none
    where several are."""


class ForeignSender(StickerqError):
    """A campaign's sender is not one of the business numbers listed for its account."""


class Account(BaseModel):
    """One Kaleyra account. An empty api_key is allowed where nothing is sent (a producer
    host); a worker refuses to start without the key of every account."""

    # hide_input_in_errors: pydantic's errors would otherwise quote the entry, key and all.
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    sid: str = Field(pattern=r"^[A-Za-z0-9_-]+$", description="the account's SID")
    api_key: SecretStr = Field(default=SecretStr(""), description="never logged or shown")
    pod: Literal["in", "ap", "eu"] = "in"
    base_url: str | None = Field(
        default=None, pattern=r"^https?://", description="overrides the pod (sandbox, proxy)"
    )
    senders: tuple[Annotated[str, Field(pattern=E164)], ...] = Field(
        default=(),
        description="the account's business numbers (E.164); empty: any sender is taken",
    )

    @property
    def url(self) -> str:
        return (self.base_url or POD_DOMAINS[self.pod]).rstrip("/")

    @property
    def has_key(self) -> bool:
        return bool(self.api_key.get_secret_value())


def default_sender(account: Account, configured: str | None) -> str | None:
    """The sender when none is given: STICKERQ_SENDER where the account takes it, else the
    account's only listed number."""
    if configured and (not account.senders or configured in account.senders):
        return configured
    return account.senders[0] if len(account.senders) == 1 else configured


def check_sender(account: Account, sender: str) -> None:
    """Refuse a sender the account does not list (an account listing none takes any)."""
    if account.senders and sender not in account.senders:
        raise ForeignSender(
            f"sender {sender} is not a business number of Kaleyra account {account.sid} "
            f"(its senders: {', '.join(account.senders)}): pass one of them with --from, or "
            "name the account it belongs to with --account"
        )


def read_accounts_file(path: Path) -> tuple[Account, ...]:
    """The accounts of a `.toml` file (an `[[accounts]]` array of tables) or a `.json` one
    (a list, or an object with an `accounts` list)."""
    where = f"accounts file {path}"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(
            f"{where} cannot be read ({exc.strerror or type(exc).__name__}): fix "
            "STICKERQ_ACCOUNTS_FILE or create the file"
        ) from None
    except UnicodeDecodeError:
        raise ConfigurationError(f"{where} is not UTF-8 text") from None
    if path.suffix.lower() == ".toml":
        try:
            data: Any = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigurationError(f"{where} is not valid TOML: {exc}") from None
    elif path.suffix.lower() == ".json":
        data = _json(text, where)
    else:
        raise ConfigurationError(f"{where}: name a .toml or .json file")
    return parse_accounts(data, where)


def read_accounts_json(text: str) -> tuple[Account, ...]:
    return parse_accounts(_json(text, ACCOUNTS_VARIABLE), ACCOUNTS_VARIABLE)


def parse_accounts(data: Any, where: str) -> tuple[Account, ...]:
    """Every entry checked; all the problems in one error, without the values given."""
    if isinstance(data, dict) and set(data) == {"accounts"}:
        data = data["accounts"]
    if not isinstance(data, list) or not data:
        raise ConfigurationError(
            f"{where} must hold a non-empty list of accounts, e.g. in TOML:\n{FILE_EXAMPLE}"
        )
    problems: list[str] = []
    accounts: list[Account] = []
    seen: dict[str, int] = {}  # sid -> its entry's number
    for number, entry in enumerate(data, start=1):
        try:
            account = Account.model_validate(entry)
        except ValidationError as exc:
            problems.extend(_problems(number, entry, exc))
            continue
        if account.sid in seen:
            problems.append(
                f"SID {account.sid} is listed twice (entries {seen[account.sid]} and {number}): "
                "give each account once"
            )
        seen.setdefault(account.sid, number)
        accounts.append(account)
    if problems:
        raise ConfigurationError(f"{where}: " + "; ".join(problems))
    return tuple(accounts)


def find_account(accounts: Sequence[Account], sid: str | None) -> Account:
    """The account named `sid`, or the only one when `sid` is None."""
    known = ", ".join(account.sid for account in accounts)
    if sid is None:
        if len(accounts) == 1:
            return accounts[0]
        raise UnknownAccount(
            f"{len(accounts)} Kaleyra accounts are configured ({known}): name one with "
            "--account SID (`account` in the HTTP API)"
        )
    for account in accounts:
        if account.sid == sid:
            return account
    raise UnknownAccount(
        f"no Kaleyra account {sid!r} is configured; known: {known} "
        "(`stickerq accounts list` shows them)"
    )


def _json(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:  # its message has the position, not the text
        raise ConfigurationError(f"{where} is not valid JSON: {exc}") from None


def _problems(number: int, entry: Any, exc: ValidationError) -> list[str]:
    sid = entry.get("sid") if isinstance(entry, dict) else None
    label = f"entry {number}" + (f" (sid {sid})" if isinstance(sid, str) and sid else "")
    found = []
    for error in exc.errors(include_url=False, include_input=False):
        field = ".".join(str(part) for part in error["loc"]) or "the entry"
        found.append(f"{label}, {field}: {error['msg']}")
    return found
