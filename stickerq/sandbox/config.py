"""The sandbox's settings, and their checked change at run time (`POST /_sandbox/config`)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from stickerq.errors import StickerqError


class SandboxConfigError(StickerqError, ValueError):
    """A run-time config change names an unknown field or gives a value of the wrong kind."""


@dataclass
class SandboxConfig:
    """What the sandbox accepts and how it misbehaves."""

    sid: str = "HXAP16XXXXXX97IN"
    # repr=False: the key must never show up in a log line or a traceback.
    api_key: str = field(default="sandbox-key", repr=False)
    # More accounts beside the one above: SID -> its api-key. A request is authenticated
    # when its api-key is the key of the SID in its path (else RBC001, as Kaleyra answers).
    accounts: Mapping[str, str] = field(default_factory=dict, repr=False)
    # Business numbers registered on the account (E.164): the `{phone_number}` of the path.
    senders: frozenset[str] = frozenset({"+919000000001"})
    latency_ms: float = 0.0  # added before answering each send
    wa500_rate: float = 0.0  # fraction of sends answered WA500 at random
    balance: int | None = None  # after this many accepted sends, answer E110 to every send
    seed: int | None = None  # for the random WA500s and callbacks; picks who is in the window
    timeout_seconds: float = 60.0  # how long a TIMEOUT scripted outcome stalls before answering
    # Status callbacks, as Kaleyra's callback profile sends them (sandbox/callbacks.py): each
    # accepted send gets one POST per status, to this URL (None: no callbacks).
    callback_url: str | None = None
    callback_statuses: tuple[str, ...] = ("sent", "delivered", "read")
    callback_delay_ms: float = 0.0  # waited before each callback
    callback_duplicate_rate: float = 0.0  # fraction of callbacks posted twice
    callback_reorder_rate: float = 0.0  # fraction of messages whose callbacks come shuffled
    callback_failed_rate: float = 0.0  # fraction of messages called back sent, failed (131047)
    # The 24-hour window (sandbox/windows.py): the fraction of (sender, recipient) pairs whose
    # customer wrote in the last 24 hours, picked by a hash of (seed, sender, recipient). A send
    # outside it is accepted, then called back sent, failed (131047). 1.0 here, so that a test
    # that does not care sees every accepted send delivered; `stickerq sandbox` uses 0.97.
    in_window_share: float = 1.0
    # Incoming-message callbacks (sandbox/inbound.py): customer messages (`POST /_inbound`,
    # `POST /_sandbox/announce`) are POSTed here in Kaleyra's shape, e.g. the stickerq API's
    # `.../callbacks/kaleyra/<secret>/incoming` (None: windows are opened, nothing is posted).
    inbound_url: str | None = None
    # Sends whose sticker id was not uploaded here (sandbox/media.py) are answered WA400.
    known_media_only: bool = False


def key_matches(config: SandboxConfig, sid: str, api_key: str | None) -> bool:
    """Whether `api_key` is the key of account `sid` (the default account or a listed one)."""
    expected = config.api_key if sid == config.sid else config.accounts.get(sid)
    return expected is not None and api_key == expected


def _string(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise SandboxConfigError(f"{name} must be a non-empty string, got {type(value).__name__}")
    return value


def _number(name: str, value: Any, *, upper: float | None = None) -> float:
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if not is_number or not math.isfinite(value) or value < 0:
        raise SandboxConfigError(f"{name} must be a number >= 0, got {value!r}")
    if upper is not None and value > upper:
        raise SandboxConfigError(f"{name} must be <= {upper}, got {value!r}")
    return float(value)


def _optional_int(name: str, value: Any) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise SandboxConfigError(f"{name} must be null or an integer >= 0, got {value!r}")
    return value


def _senders(name: str, value: Any) -> frozenset[str]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise SandboxConfigError(f"{name} must be a list of E.164 numbers, got {value!r}")
    numbers = list(value)
    if not all(isinstance(number, str) and number for number in numbers):
        raise SandboxConfigError(f"{name} must hold non-empty strings only, got {numbers!r}")
    return frozenset(numbers)


def _accounts(name: str, value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise SandboxConfigError(f"{name} must be an object of SID -> api-key")
    if not all(isinstance(k, str) and k and isinstance(v, str) and v for k, v in value.items()):
        raise SandboxConfigError(f"{name} must map non-empty SIDs to non-empty api-keys")
    return dict(value)  # never echoed: it holds keys


CALLBACK_STATUSES = frozenset({"sent", "delivered", "read", "failed", "not-sent"})


def _optional_url(name: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.startswith(("http://", "https://")):
        raise SandboxConfigError(f"{name} must be null or an http(s) URL, got {value!r}")
    return value


def _statuses(name: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise SandboxConfigError(f"{name} must be a list of statuses, got {value!r}")
    statuses = tuple(value)
    unknown = sorted(set(statuses) - CALLBACK_STATUSES, key=str)
    if unknown:
        raise SandboxConfigError(f"{name}: unknown {unknown}; known: {sorted(CALLBACK_STATUSES)}")
    return statuses


def _flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise SandboxConfigError(f"{name} must be true or false, got {value!r}")
    return value


def _rate(name: str, value: Any) -> float:
    return _number(name, value, upper=1.0)


_CHECKS: dict[str, Callable[[str, Any], Any]] = {
    "sid": _string,
    "api_key": _string,
    "accounts": _accounts,
    "senders": _senders,
    "latency_ms": _number,
    "wa500_rate": _rate,
    "balance": _optional_int,
    "seed": _optional_int,
    "timeout_seconds": _number,
    "callback_url": _optional_url,
    "callback_statuses": _statuses,
    "callback_delay_ms": _number,
    "callback_duplicate_rate": _rate,
    "callback_reorder_rate": _rate,
    "callback_failed_rate": _rate,
    "in_window_share": _rate,
    "inbound_url": _optional_url,
    "known_media_only": _flag,
}


def changed_config(config: SandboxConfig, changes: Mapping[str, Any]) -> SandboxConfig:
    """A copy of `config` with `changes` applied; every field name and value is checked first."""
    unknown = sorted(set(changes) - set(_CHECKS))
    if unknown:
        raise SandboxConfigError(f"unknown config fields {unknown}; known: {sorted(_CHECKS)}")
    checked = {name: _CHECKS[name](name, value) for name, value in changes.items()}
    return dataclasses.replace(config, **checked)


def public_view(config: SandboxConfig) -> dict[str, Any]:
    """The config as JSON-ready data, with the api-key masked."""
    view = dataclasses.asdict(config)
    view["api_key"] = "***"
    view["accounts"] = {sid: "***" for sid in config.accounts}
    view["senders"] = sorted(config.senders)
    return view
