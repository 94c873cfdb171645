"""Kaleyra accounts: each a SID, its api-key, its pod (or base URL) and its business numbers.

Several accounts come from a TOML or JSON file (`STICKERQ_ACCOUNTS_FILE`) or from JSON in
`STICKERQ_ACCOUNTS`; without either, the one account of the `STICKERQ_KALEYRA_*` settings.
Settings.all_accounts() and Settings.account() resolve them (stickerq/settings.py).

An error here names the file (or variable), the entry and the field, never a value given:
an entry holds an api-key. Whatever the text (any bytes, any nesting, any size), reading it
ends in the accounts or in a ConfigurationError, never in another exception.
"""

from __future__ import annotations

import json
import re
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
# A few hundred accounts take a few dozen KiB; past this the file is not a list of accounts
# (and /dev/zero named by mistake is not read for ever).
MAX_BYTES = 1 << 20
SID_PATTERN = r"^[A-Za-z0-9_-]+$"


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

    sid: str = Field(pattern=SID_PATTERN, description="the account's SID")
    api_key: SecretStr = Field(default=SecretStr(""), description="never logged or shown")
    pod: Literal["in", "ap", "eu"] = "in"
    base_url: str | None = Field(
        default=None, pattern=r"^https?://", description="overrides the pod (sandbox, proxy)"
    )
    senders: tuple[Annotated[str, Field(pattern=E164)], ...] = Field(
        default=(),
        description="the account's business numbers (E.164); empty: any sender is taken",
    )
    retention_days: int | None = Field(
        default=None,
        ge=0,
        description="days its finished campaigns' messages are kept (0: for ever); "
        "unset: STICKERQ_RETENTION_DAYS",
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
    kind = path.suffix.lower()
    if kind not in (".toml", ".json"):
        raise ConfigurationError(f"{where}: name a .toml or .json file")
    text = _read_text(path, where)
    if kind == ".toml":
        try:
            data: Any = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigurationError(f"{where} is not valid TOML: {exc}") from None
        except (ValueError, RecursionError) as exc:  # 5,000 digits; [[[[...]]]]
            raise ConfigurationError(f"{where} is not valid TOML: {_beyond(exc)}") from None
    else:
        data = _json(text, where)
    return parse_accounts(data, where)


def _beyond(exc: Exception) -> str:
    """What a parser gave up on that its own errors do not say."""
    if isinstance(exc, RecursionError):
        return "values nested too deeply (an account is one table of plain values)"
    return "a number too long to read (over 4,300 digits)"


def _read_text(path: Path, where: str) -> str:
    """The file's text: a regular file, UTF-8, at most MAX_BYTES."""
    fix = "fix STICKERQ_ACCOUNTS_FILE or create the file"
    try:
        if path.exists() and not path.is_file():
            raise ConfigurationError(f"{where} is not a regular file (a folder, a device?): {fix}")
        with path.open("rb") as handle:
            raw = handle.read(MAX_BYTES + 1)
    except OSError as exc:
        raise ConfigurationError(
            f"{where} cannot be read ({exc.strerror or type(exc).__name__}): {fix}"
        ) from None
    if len(raw) > MAX_BYTES:
        raise ConfigurationError(
            f"{where} is larger than {MAX_BYTES // 1024} KiB, too large for a list of "
            f"accounts: {fix}"
        )
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigurationError(f"{where} is not UTF-8 text: save it as UTF-8") from None


def read_accounts_json(text: str) -> tuple[Account, ...]:
    if len(text) > MAX_BYTES:
        raise ConfigurationError(
            f"{ACCOUNTS_VARIABLE} is longer than {MAX_BYTES // 1024} KiB: it cannot be a list "
            "of accounts; list them in a file (STICKERQ_ACCOUNTS_FILE)"
        )
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
    except (ValueError, RecursionError) as exc:  # 5,000 digits; [[[[...]]]]
        raise ConfigurationError(f"{where} is not valid JSON: {_beyond(exc)}") from None


def _problems(number: int, entry: Any, exc: ValidationError) -> list[str]:
    sid = entry.get("sid") if isinstance(entry, dict) else None
    # only a SID as SIDs are written: any other text (control characters, a key pasted in
    # the wrong field) stays out of the message
    named = isinstance(sid, str) and len(sid) <= 64 and re.fullmatch(SID_PATTERN, sid)
    label = f"entry {number}" + (f" (sid {sid})" if named else "")
    found = []
    for error in exc.errors(include_url=False, include_input=False):
        field = ".".join(str(part) for part in error["loc"]) or "the entry"
        found.append(f"{label}, {field}: {error['msg']}")
    return found
